"""What `gptkit quickstart` says, in each toy world's language: rules, notes and footnotes.

Data only (the table headings live with the tables, `ui.render.HEADINGS`); the English and the
Japanese worlds are the same world, so every key says the same thing in both.
"""

TEXTS = {
    "en": {
        "title": "from raw text to an assistant, on the toy world",
        "chars_per_token": "{:.2f} characters per token on {} documents of another seed",
        "showcase": "1. Same prompt, two models",
        "heldout": "2. Held-out tasks (greedy; questions or compositions never seen in training)",
        "hops": "hop-1: who is a test child's mother or father; hop-2: where a test parent lives, what they do;"
                " two-hop: both at once (the town of a child's parents, a parent's job), asked directly",
        "techniques": "3. Prompt techniques on questions that need two facts",
        "commands": "Every cell, with its rows in the logbook: (KIND: two-hop, or capital adding --score contains)",
        "curves": "4. Loss curves",
        "time": "time",
        "try": "Try it yourself",
        "footnote": "n = {n} questions; \\[low-high] is a 95% Wilson interval; agree: the voted answer's share of"
                    " the chains; unread: chains with no readable answer.",
        "control": " Shuffled-answer control (step-by-step answers scored against another question's answer):"
                   " {:.0%}, chance is ~10%.",
        "feedback": "Learning from rankings (--feedback)",
        "feedback_pairs": "{pairs} pairs from {prompts_ranked} questions (demo families, strangers) x {samples_per_prompt}"
                          " chains, ranked by the final answer's truth ({rater}, in the logbook); DPO {dpo_steps} steps.",
        "feedback_none": "No pairs, so no policy: every question's chains were all right or all wrong.",
        "feedback_result": "{template} on held-out two-hop questions: assistant {before} -> policy {after}",
    },
    "ja": {
        "title": "生のテキストからアシスタントまで、日本語のトイワールドで",
        "chars_per_token": "別のシードの文書 {1} 件で 1トークンあたり {0:.2f} 文字",
        "showcase": "1. 同じプロンプト、2つのモデル",
        "heldout": "2. 学習で見ていない問題(貪欲法。問い方か組み合わせが学習文に一度も出ない)",
        "hops": "hop-1: テスト家族の子どもの母・父は誰か。hop-2: テスト家族の親がどの町に住み、何の仕事をしているか。"
                "two-hop: その両方を一度に(子どもの両親が住む町、親の仕事)、そのまま質問",
        "techniques": "3. 2つの事実が要る質問でのプロンプト手法",
        "commands": "各セルを再現するコマンド(各行はログブックにも): (KIND は two-hop、または capital に --score contains)",
        "curves": "4. 損失曲線",
        "time": "時間",
        "try": "自分で試す",
        "footnote": "n = {n} 問。\\[下限-上限] は95%ウィルソン区間。agree: 多数決の答えと同じ答えを出した推論の割合。"
                    "unread: 答えを読み取れなかった推論の割合。",
        "control": " 答えを入れ替えた対照(ステップごとの答えを別の質問の正解と照合): {:.0%}、偶然なら約10%。",
        "feedback": "順位から学ぶ(--feedback)",
        "feedback_pairs": "{prompts_ranked} 問(デモ家族と知らない人)× 推論 {samples_per_prompt} 本を最後の答えの正誤で順位付け"
                          "({rater}、ログブックに記録)、{pairs} ペアで DPO を {dpo_steps} ステップ。",
        "feedback_none": "ペアがないので方策も作れません: どの質問でも推論がすべて正しいか、すべて誤りでした。",
        "feedback_result": "学習で見ていない two-hop の質問で {template}: アシスタント {before} -> 方策 {after}",
    },
}
