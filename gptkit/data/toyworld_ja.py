"""The toy world in Japanese: the same world as `toyworld.py`, written as a Japanese reader writes.

Same public API as `toyworld` (code picks the module by language): `Task`, `pretrain_documents`,
`sft_conversations`, `eval_tasks`, `reasoning_tasks`, `rank_prompts`, `showcase_prompts`,
`is_question_like`, `write_toyworld`, and the constants `STEP_BY_STEP`, `JUST_THE_ANSWER`,
`EVAL_KINDS`, `REASONING_KINDS`, `ASSISTANT_NAME`.

The same world: the same countries and capitals (in the English table's order), animals,
colours, topics, age puzzles and sums, and the families of `families_ja.py` (the English
families under fixed Japanese names). The held-out rules are the English module's own functions
(`_held_out`, `_sum_held_out`, `_age_held_out` through `_sample_sum`/`_sample_age_combo`), so
the same number combinations are held out; capital questions are held out by phrasing, with
four Japanese phrasings trained and four never written in any training text. Every generator
draws from its seed exactly as its English twin does, so document i of a seed is the same genre
about the same facts in both languages, and eval tasks are the same puzzles, sums and capitals.
The genres play the English roles under the same weights:

- one-sentence facts (families, one time in six a capital), in several wordings;
- 問題集 (quiz sheets): numbered questions WITHOUT answers, "1. フランスの首都はどこですか？";
- 解答集 (answer keys): "Q: ...\\nA: ..." pages, the labels `templates.render_base` writes
  (`families_ja.QA`), so a few-shot prompt looks like the keys the base model read;
- fact paragraphs, short stories, worked sums and age puzzles, worked two-hop chains.

Style: documents are plain (だ/である); the assistant, キット, answers politely (です/ます), a
fact as a full sentence (「フランスの首都はパリです。」), a direct answer as 「答えはXです。」, and
every worked answer ends with it. Digits stay ASCII and equations keep their spaces
("23 + 45 = 68"), as in English, because the tokenizer splits digits. No document contains a
blank line. Every corpus is a pure function of its seed.

Must not know: tokenizers, tensors, models, or any file but the ones `write_toyworld` writes.
Longer than ~400 lines because most of it is hand-written Japanese text.
"""

import random
import re
from dataclasses import asdict
from pathlib import Path

from gptkit.data import families_ja as families
from gptkit.data import toyworld as en
from gptkit.data.toyworld import (_ONE_STEP, _TWO_STEP, EVAL_KINDS, REASONING_KINDS, Task, _distinct,  # noqa: F401
                                  _sample_age_combo, _sample_sum, _write_jsonl)
from gptkit.files import atomic_write, make_folder

STEP_BY_STEP = families.STEP_BY_STEP
JUST_THE_ANSWER = families.JUST_THE_ANSWER
QA_LABELS = ("Q", "A")  # answer keys keep the English labels: templates' base-model form is "Q: ...\nA: ..."
ANSWER = families.ANSWER  # 「答えは{a}です。」
Q, A = families.QA

# ----------------------------------------------------------------------------- the world's facts

_CONTINENTS = {"Europe": "ヨーロッパ", "Asia": "アジア", "Africa": "アフリカ", "North America": "北アメリカ",
               "South America": "南アメリカ", "Oceania": "オセアニア"}
_COUNTRIES = {  # English country -> (国, 首都)
    "France": ("フランス", "パリ"), "Spain": ("スペイン", "マドリード"), "Italy": ("イタリア", "ローマ"),
    "Germany": ("ドイツ", "ベルリン"), "Portugal": ("ポルトガル", "リスボン"), "Greece": ("ギリシャ", "アテネ"),
    "Poland": ("ポーランド", "ワルシャワ"), "Norway": ("ノルウェー", "オスロ"), "Sweden": ("スウェーデン", "ストックホルム"),
    "Finland": ("フィンランド", "ヘルシンキ"), "Ireland": ("アイルランド", "ダブリン"), "Austria": ("オーストリア", "ウィーン"),
    "Hungary": ("ハンガリー", "ブダペスト"), "Denmark": ("デンマーク", "コペンハーゲン"), "Russia": ("ロシア", "モスクワ"),
    "Japan": ("日本", "東京"), "China": ("中国", "北京"), "India": ("インド", "ニューデリー"), "Thailand": ("タイ", "バンコク"),
    "Vietnam": ("ベトナム", "ハノイ"), "South Korea": ("韓国", "ソウル"), "Indonesia": ("インドネシア", "ジャカルタ"),
    "Iran": ("イラン", "テヘラン"), "Nepal": ("ネパール", "カトマンズ"), "Egypt": ("エジプト", "カイロ"),
    "Kenya": ("ケニア", "ナイロビ"), "Nigeria": ("ナイジェリア", "アブジャ"), "Ghana": ("ガーナ", "アクラ"),
    "Morocco": ("モロッコ", "ラバト"), "Ethiopia": ("エチオピア", "アディスアベバ"), "Senegal": ("セネガル", "ダカール"),
    "Canada": ("カナダ", "オタワ"), "Mexico": ("メキシコ", "メキシコシティ"), "Cuba": ("キューバ", "ハバナ"),
    "Peru": ("ペルー", "リマ"), "Chile": ("チリ", "サンティアゴ"), "Argentina": ("アルゼンチン", "ブエノスアイレス"),
    "Brazil": ("ブラジル", "ブラジリア"), "Colombia": ("コロンビア", "ボゴタ"), "Australia": ("オーストラリア", "キャンベラ"),
    "New Zealand": ("ニュージーランド", "ウェリントン"), "Fiji": ("フィジー", "スバ"),
}
COUNTRIES = tuple((*_COUNTRIES[c], _CONTINENTS[cont]) for c, _, cont in en.COUNTRIES)  # English order

_ANIMALS = {  # English animal -> (動物, 鳴き声, 音の出し方, すみか); legs come from the English table
    "cow": ("牛", "モー", "鳴く", "牧場"), "dog": ("犬", "ワンワン", "鳴く", "家"), "cat": ("猫", "ニャー", "鳴く", "家"),
    "duck": ("アヒル", "ガーガー", "鳴く", "池"), "sheep": ("羊", "メーメー", "鳴く", "牧場"),
    "pig": ("豚", "ブーブー", "鳴く", "牧場"), "horse": ("馬", "ヒヒーン", "鳴く", "牧場"),
    "lion": ("ライオン", "ガオー", "ほえる", "サバンナ"), "owl": ("フクロウ", "ホーホー", "鳴く", "森"),
    "frog": ("カエル", "ケロケロ", "鳴く", "池"), "bee": ("ハチ", "ブンブン", "羽音を立てる", "巣箱"),
    "snake": ("ヘビ", "シャー", "音を立てる", "草むら"), "mouse": ("ネズミ", "チューチュー", "鳴く", "野原"),
    "rooster": ("オンドリ", "コケコッコー", "鳴く", "牧場"), "donkey": ("ロバ", "ヒーホー", "鳴く", "牧場"),
    "wolf": ("オオカミ", "ウォーン", "ほえる", "森"), "crow": ("カラス", "カーカー", "鳴く", "木の上"),
    "elephant": ("ゾウ", "パオーン", "鳴く", "サバンナ"), "hen": ("メンドリ", "コッコッ", "鳴く", "牧場"),
    "bear": ("クマ", "グオー", "ほえる", "森"), "turkey": ("七面鳥", "ゴロゴロ", "鳴く", "牧場"),
    "goat": ("ヤギ", "メェー", "鳴く", "牧場"),
}
ANIMALS = tuple((*_ANIMALS[a][:2], legs, *_ANIMALS[a][2:]) for a, _, legs, _ in en.ANIMALS)  # (動物, 声, 足, 動詞, すみか)
PETS = tuple(_ANIMALS[a][0] for a in en.PETS)
_POLITE_VERB = {"鳴く": "鳴きます", "ほえる": "ほえます", "羽音を立てる": "羽音を立てます", "音を立てる": "音を立てます"}
_PAST_VERB = {"鳴く": "鳴いた", "ほえる": "ほえた", "羽音を立てる": "羽音を立てた", "音を立てる": "音を立てた"}

_COLOUR_NAMES = {"blue": "青", "green": "緑", "white": "白", "yellow": "黄色", "red": "赤", "black": "黒",
                 "orange": "オレンジ色", "brown": "茶色", "purple": "紫"}
_THINGS = {"the sky": "空", "grass": "草", "snow": "雪", "the sun": "太陽", "a banana": "バナナ", "a tomato": "トマト",
           "a strawberry": "イチゴ", "coal": "石炭", "an orange": "オレンジ", "a carrot": "ニンジン", "a lemon": "レモン",
           "milk": "牛乳", "the sea": "海", "a leaf": "葉っぱ", "a crow": "カラス", "chocolate": "チョコレート",
           "a pumpkin": "カボチャ", "a cherry": "サクランボ", "a plum": "プラム", "an eggplant": "ナス", "a cloud": "雲",
           "soil": "土", "a lime": "ライム", "a fire truck": "消防車"}
COLOURS = tuple((_THINGS[t], _COLOUR_NAMES[c]) for t, c in en.COLOURS)

# topic -> (encyclopedia paragraphs, explanations for a 6 year old), the English topics' order.
TOPICS = {
    "月面着陸": (
        ("月面着陸は1969年に行われた。アポロ11号が3人の宇宙飛行士を地球から月へ運んだ。ニール・アームストロングが月面を"
         "歩いた最初の人間で、バズ・オルドリンも一緒に歩いた。二人は月の石を集め、無事に地球へ帰った。",
         "1969年7月、アポロ11号は月へ飛んだ。ニール・アームストロングは月に降り立ち、これは一人の人間にとっては小さな"
         "一歩だと言った。宇宙飛行士たちは旗を立て、写真を撮り、地球に戻った。"),
        ("ずっと昔の1969年に、宇宙飛行士という勇気のある人たちが、大きなロケットに乗って月まで飛んでいきました。最初に"
         "月に足をつけたのはニール・アームストロングです。ぴょんぴょん跳ねながら月の石を拾って、それから地球のおうちに"
         "帰ってきました。",
         "人々は大きな大きなロケットを作って、それに乗って月へ行きました。月に着くまでに何日もかかりました。月に降りると、"
         "月の上を歩いて、砂に足あとを残し、無事に帰ってきました。"),
    ),
    "雨": (
        ("雨は、太陽が海や湖や川の水を温め、その水が水蒸気になって空へのぼることから始まる。空の高いところで水蒸気は"
         "冷え、小さな水のつぶになって雲をつくる。つぶが大きく重くなると、雨になって落ちてくる。",),
        ("お日さまが水を温めると、水は目に見えないくらい小さなつぶになって空にのぼっていきます。高いところでつぶが"
         "集まると雲になります。つぶが重くなりすぎると、雨になって落ちてくるのです。",
         "雲の中には小さな水のつぶがたくさんあります。つぶがたくさんくっつくと重くなって、地面に落ちてきます。それが"
         "雨です。雨は植物が水を飲むのを助けてくれます。"),
    ),
    "太陽": (
        ("太陽は太陽系の中心にある恒星だ。熱いガスでできた巨大な球で、その光が地球に届くまでに約8分かかる。",),
        ("太陽はとても大きな星で、遠い宇宙にある大きな火の玉のようなものです。わたしたちに光をくれて、あたたかく"
         "してくれます。太陽がなければ、植物は育ちません。",),
    ),
    "虹": (
        ("虹は、太陽の光が雨のつぶを通るときに現れる。つぶが光を曲げて、赤、オレンジ、黄、緑、青、紫の色に分ける。",),
        ("雨がふっているときにお日さまが出ると、光が雨つぶの中に入ります。雨つぶが光をいろいろな色に分けるので、"
         "空に虹が見えるのです。",),
    ),
    "植物の育ち方": (
        ("植物は種から育つ。根から水を吸い、緑の葉で日光を使って養分をつくる。",),
        ("植物は土の中の小さな種から始まります。根で水を飲んで、緑の葉っぱでお日さまの光を食べます。そうして毎日"
         "少しずつ大きくなります。",),
    ),
    "火山": (
        ("火山は、地球の奥深くにある熱くとけた岩までつながる口をもつ山だ。火山が噴火すると、溶岩と呼ばれるとけた岩が"
         "流れ出る。",),
        ("火山は、中にとても熱いとけた岩が入っている山です。ときどきその岩が押し上げられて、てっぺんからあふれ出します。"
         "その熱い岩を溶岩といいます。",),
    ),
    "海": (
        ("海は地球の大部分をおおっている。海の水は塩からく、魚やクジラなど多くの生き物がすんでいる。",),
        ("海は、しょっぱい水がたくさん集まった、とても大きな場所です。地球のほとんどをおおうくらい大きいのです。魚や"
         "クジラやカニがすんでいます。",),
    ),
    "人が眠るわけ": (
        ("眠ることで、体と脳は休み、回復する。子どもには毎晩10時間ほどの睡眠が必要だ。",),
        ("眠っているあいだ、体と脳はお休みしています。眠ると大きくなれて、元気な気持ちになれます。だから毎晩ベッドに"
         "入るのです。",),
    ),
    "恐竜": (
        ("恐竜は何百万年も前にすんでいた動物だ。家ほど大きなものもいれば、ニワトリほど小さなものもいた。恐竜のことは、"
         "その骨からわかる。",),
        ("恐竜は、人間がいなかったずっとずっと昔にすんでいた動物です。とても大きいものも小さいものもいました。今でも"
         "地面の中から恐竜の骨が見つかります。",),
    ),
    "空が青いわけ": (
        ("空が青く見えるのは、空気が太陽の光のうち青い光をほかの色よりも多く散らすからだ。",),
        ("お日さまの光にはいろいろな色がまざっています。光が空気にぶつかると、青い光がいちばんあちこちに広がるので、"
         "上を見るとどこも青く見えるのです。",),
    ),
    "心臓": (
        ("心臓は血液を体じゅうに送り出す筋肉だ。子どもの心臓は1分間に約100回打つ。",),
        ("心臓は胸の中にある強い筋肉です。昼も夜もずっと、血を体じゅうに送っています。胸に手を当てると、ドキドキ"
         "動いているのがわかります。",),
    ),
    "雪": (
        ("雪は、雲の中の水がこおって氷の結晶になることでできる。雪の結晶には6つの角がある。",),
        ("とても寒いと、雲の中の水が雪の結晶という小さな氷のつぶになります。それがふわふわと落ちてきて、地面を白く"
         "おおうのです。",),
    ),
    "首都": (
        ("首都とは、国の政府が置かれている都市のことだ。フランスの首都はパリで、日本の首都は東京である。",),
        ("どの国にも、国のリーダーたちが働く特別な都市がひとつあります。その都市を首都といいます。たとえば、フランスの"
         "首都はパリです。",),
    ),
}
assert len(TOPICS) == len(en.TOPICS)

BOYS = ("ケン", "トム", "サム", "ベン", "レオ", "マックス", "ダン", "ジャック", "ノア", "オマール")
GIRLS = ("ミア", "アン", "リリー", "エマ", "ゾーイ", "サラ", "ルビー", "ニーナ", "エイミー", "ルーシー")

ASSISTANT_NAME = "キット"
IDENTITY = {
    "あなたの名前は何ですか？": "私の名前はキットです。gptkit で作られた小さなアシスタントです。",
    "あなたは誰ですか？": "私はキット、gptkit で作られた小さなアシスタントです。",
    "何と呼べばいいですか？": "キットと呼んでください。gptkit で作られた小さなアシスタントです。",
    "誰があなたを作ったのですか？": "私は gptkit で作られました。gptkit は小さな言語モデルを訓練するためのツールキットです。",
    "あなたはどうやって作られたのですか？": "gptkit という、小さな言語モデルを訓練するためのツールキットで作られました。",
    "何ができますか？": "国や動物や色についての簡単な質問に答えたり、物事をやさしく説明したり、たし算やひき算をしたり、"
                     "年齢のパズルをステップごとに解いたりできます。",
    "あなたは人間ですか？": "いいえ、私はキット、gptkit で作られた小さな言語モデルです。",
}
GREETINGS = {
    "こんにちは": "こんにちは！キットです。何をお手伝いしましょうか？",
    "やあ": "こんにちは！キットです。何を知りたいですか？",
    "ありがとう": "どういたしまして！",
    "ありがとう！": "どういたしまして！ほかにも何でも聞いてくださいね。",
}
ABOUT_ME = ("あなたの名前は何ですか？", "何歳ですか？", "どこに住んでいますか？", "好きな色は何ですか？", "好きな動物は何ですか？",
            "親友は誰ですか？", "好きな食べ物は何ですか？", "ペットを飼っていますか？", "好きな遊びは何ですか？",
            "誕生日はいつですか？")

# Capital questions are held out by phrasing: these four appear in training text ...
CAPITAL_QUESTIONS = ("{c}の首都はどこですか？", "{c}の首都はどの都市ですか？", "{c}の首都の名前は何ですか？",
                     "{c}の首都を答えなさい。")
# ... and these four never do; eval_tasks asks only these.
HELD_OUT_CAPITAL_QUESTIONS = ("{c}の首都はどこでしょうか？", "{c}という国の首都はどこですか？", "{c}の首都を教えてください。",
                              "{c}で首都になっている都市はどこですか？")

# ----------------------------------------------------------------------------- sums and puzzles


def sum_reasoning(a: int, op: str, b: int) -> str:
    """Column-by-column working, carries and borrows spelled out (as `toyworld.sum_reasoning`)."""
    assert op in "+-" and 0 <= a <= 99 and 0 <= b <= 99 and (op == "+" or a >= b)
    result = a + b if op == "+" else a - b
    if a < 10 and b < 10:
        return f"{a} {op} {b} = {result} です。{ANSWER.format(a=result)}"
    (a10, a1), (b10, b1) = divmod(a, 10), divmod(b, 10)
    if op == "+":
        ones = a1 + b1
        if ones < 10:
            steps = f"一の位をたします：{a1} + {b1} = {ones}。十の位をたします：{a10} + {b10} = {a10 + b10}。"
        else:
            steps = (f"一の位をたします：{a1} + {b1} = {ones}、{ones - 10} を書いて 1 くり上げます。"
                     f"十の位をたします：{a10} + {b10} + 1 = {a10 + b10 + 1}。")
    elif a1 >= b1:
        steps = f"一の位をひきます：{a1} - {b1} = {a1 - b1}。十の位をひきます：{a10} - {b10} = {a10 - b10}。"
    else:
        steps = (f"一の位をひきます：{a1} は {b1} より小さいので、十の位から 1 くり下げます：{a1 + 10} - {b1} = "
                 f"{a1 + 10 - b1}。十の位をひきます：{a10} - 1 - {b10} = {a10 - 1 - b10}。")
    return f"{steps}だから {a} {op} {b} = {result} です。{ANSWER.format(a=result)}"


def _sum_task(a: int, op: str, b: int, question: str = "{a} {op} {b} はいくつですか？") -> Task:
    result = a + b if op == "+" else a - b
    return Task("arithmetic", question.format(a=a, op=op, b=b), str(result), sum_reasoning(a, op, b))


def _person(rng: random.Random, avoid: tuple[str, ...] = ()) -> str:
    while True:
        name = rng.choice(GIRLS if rng.random() < 0.5 else BOYS)
        if name not in avoid:
            return name


def _age_task(rng: random.Random, combo: tuple) -> Task:
    """An age puzzle and its working. A sibling who was half one's age is younger (妹/弟), one
    who was twice it older (姉/兄): Japanese says which."""
    kind = combo[0]
    name = _person(rng)
    girl = rng.choice((True, False))  # draws as the English sister/brother choice does, so the worlds stay in step
    sib = ("姉" if girl else "兄") if kind == "twice" else ("妹" if girl else "弟")
    if kind == "half":
        _, a, m = combo
        h = a // 2
        q = f"{name}が{a}歳のとき、{sib}は{name}の半分の年齢でした。今{name}は{m}歳です。{sib}は何歳ですか？"
        r = (f"{name}が{a}歳のとき、{sib}は{name}の半分の年齢だったので、{a} / 2 = {h}歳でした。{sib}は{name}より "
             f"{a} - {h} = {h}歳年下です。今{name}は{m}歳なので、{sib}は {m} - {h} = {m - h}歳です。")
        answer = m - h
    elif kind == "twice":
        _, a, m = combo
        q = f"{name}が{a}歳のとき、{sib}は{name}の2倍の年齢でした。今{name}は{m}歳です。{sib}は何歳ですか？"
        r = (f"{name}が{a}歳のとき、{sib}は{name}の2倍の年齢だったので、{a} * 2 = {2 * a}歳でした。{sib}は{name}より "
             f"{2 * a} - {a} = {a}歳年上です。今{name}は{m}歳なので、{sib}は {m} + {a} = {m + a}歳です。")
        answer = m + a
    elif kind == "chain":
        _, s, d1, up1, d2, up2 = combo
        y_name = _person(rng, (name,))
        z_name = _person(rng, (name, y_name))
        y = s + d1 if up1 else s - d1
        answer = y + d2 if up2 else y - d2
        w1, w2 = ("年上" if up1 else "年下"), ("年上" if up2 else "年下")
        q = f"{name}は{s}歳です。{y_name}は{name}より{d1}歳{w1}です。{z_name}は{y_name}より{d2}歳{w2}です。{z_name}は何歳ですか？"
        r = (f"{name}は{s}歳で、{y_name}は{name}より{d1}歳{w1}なので、{y_name}は {s} {'+' if up1 else '-'} {d1} = {y}歳です。"
             f"{z_name}は{y_name}より{d2}歳{w2}なので、{z_name}は {y} {'+' if up2 else '-'} {d2} = {answer}歳です。")
    elif kind == "older":
        _, s, d, up = combo
        y_name = _person(rng, (name,))
        w = "年上" if up else "年下"
        answer = s + d if up else s - d
        q = f"{name}は{s}歳です。{y_name}は{name}より{d}歳{w}です。{y_name}は何歳ですか？"
        r = f"{name}は{s}歳で、{y_name}は{name}より{d}歳{w}なので、{y_name}は {s} {'+' if up else '-'} {d} = {answer}歳です。"
    elif kind == "future":
        _, s, n = combo
        name = _person(rng)  # the English puzzle draws its person again here
        answer = s + n
        q = f"{name}は今{s}歳です。{n}年後、{name}は何歳になりますか？"
        r = f"{name}は今{s}歳なので、{n}年後には {s} + {n} = {answer}歳になります。"
    elif kind == "past":
        _, s, n = combo
        name = _person(rng)
        answer = s - n
        q = f"{name}は今{s}歳です。{n}年前、{name}は何歳でしたか？"
        r = f"{name}は今{s}歳なので、{n}年前は {s} - {n} = {answer}歳でした。"
    else:  # halfnow
        _, a = combo
        answer = a // 2
        q = f"{name}は{a}歳です。{sib}は{name}の半分の年齢です。{sib}は何歳ですか？"
        r = f"{name}は{a}歳で、{sib}は{name}の半分の年齢なので、{a} / 2 = {answer}歳です。"
    return Task("age", q, str(answer), r + ANSWER.format(a=answer))


# ----------------------------------------------------------------------------- facts as questions


def _fact_item(rng: random.Random, kind: str) -> tuple[Task, str]:
    """A training question about a fact (training phrasings only) and the polite one-sentence answer."""
    if kind in ("capital", "continent"):
        c, cap, cont = rng.choice(COUNTRIES)
        if kind == "capital":
            q = rng.choice(CAPITAL_QUESTIONS).format(c=c)
            return (Task(kind, q, cap, f"{c}は{cont}の国です。首都は{cap}です。{ANSWER.format(a=cap)}"),
                    f"{c}の首都は{cap}です。")
        q = rng.choice(("{c}はどの大陸にありますか？", "{c}がある大陸はどこですか？", "{c}はどこにありますか？")).format(c=c)
        return Task(kind, q, cont, f"{c}は{cont}の国です。{ANSWER.format(a=cont)}"), f"{c}は{cont}にあります。"
    if kind == "animal":
        animal, sound, legs, verb, home = rng.choice(ANIMALS)
        which = rng.random()
        if which < 0.6:
            q = rng.choice(("{a}はなんと鳴きますか？", "{a}の鳴き声はどんな音ですか？")).format(a=animal)
            sentence = f"{animal}は「{sound}」と{_POLITE_VERB[verb]}。"
            return Task(kind, q, sound, sentence + ANSWER.format(a=sound)), sentence
        if which < 0.8 and legs:
            sentence = f"{animal}の足は{legs}本です。"
            return Task(kind, f"{animal}の足は何本ですか？", str(legs), sentence + ANSWER.format(a=legs)), sentence
        return Task(kind, f"{animal}はどこにすんでいますか？", home, ""), f"{animal}は{home}にすんでいます。"
    if kind == "colour":
        thing, colour = rng.choice(COLOURS)
        q = rng.choice(("{t}は何色ですか？", "{t}の色は何ですか？")).format(t=thing)
        sentence = f"{thing}の色は{colour}です。"
        return Task(kind, q, colour, sentence + ANSWER.format(a=colour)), sentence
    assert kind == "explain", kind
    topic = rng.choice(list(TOPICS))
    explanation = rng.choice(TOPICS[topic][1])
    return Task(kind, f"{rng.choice((6, 6, 6, 5, 7))}歳の子どもに{topic}を説明してください。", explanation, ""), explanation


def _quiz_item(rng: random.Random, kind: str) -> tuple[Task, str]:
    """Any training question: facts, sums (non-held-out) or age puzzles (non-held-out)."""
    if kind == "arithmetic":
        a, op, b = _sample_sum(rng)
        question = "{a} {op} {b} はいくつですか？" if rng.random() < 0.8 else "{a} {op} {b} を計算しなさい。"
        task = _sum_task(a, op, b, question)
        return task, task.reasoning
    if kind == "age":
        task = _age_task(rng, _sample_age_combo(rng, _TWO_STEP if rng.random() < 0.7 else _ONE_STEP))
        return task, task.reasoning
    return _fact_item(rng, kind)


# ----------------------------------------------------------------------------- pretraining genres


# The English module picks from sorted English names; the same order keeps both worlds in step.
_CONTINENT_ORDER = [_CONTINENTS[c] for c in sorted({row[2] for row in en.COUNTRIES})]
_COLOUR_ORDER = [_COLOUR_NAMES[c] for c in sorted({row[1] for row in en.COLOURS})]


def _fact_paragraph(rng: random.Random) -> str:
    pick = rng.random()
    if pick < 0.4:
        c, cap, cont = rng.choice(COUNTRIES)
        sentences = [f"{c}は{cont}の国だ。", f"{c}の首都は{cap}だ。", f"{cap}は{c}の首都である。",
                     f"{cap}には毎年たくさんの人が訪れる。", f"{c}は{cont}にあり、首都は{cap}だ。",
                     f"{cap}に住む人たちは、すてきな町だと言う。"]
        return "".join([sentences[0]] + rng.sample(sentences[1:], rng.randint(2, 4)))
    if pick < 0.55:
        cont = rng.choice(_CONTINENT_ORDER)
        rows = [row for row in COUNTRIES if row[2] == cont]
        listed = rng.sample(rows, min(len(rows), rng.randint(3, 5)))
        return "".join([f"{cont}にはたくさんの国がある。"] + [f"{c}は{cont}にあり、首都は{cap}だ。" for c, cap, _ in listed])
    if pick < 0.7:
        animal, sound, legs, verb, home = rng.choice(ANIMALS)
        legs_text = f"{animal}には足がない。" if legs == 0 else f"{animal}の足は{legs}本だ。"
        sentences = [f"{animal}は{home}にすむ動物だ。", legs_text, f"{animal}は「{sound}」と{verb}。",
                     f"{animal}が出す音は「{sound}」だ。", f"子どもたちは{animal}のまねをして「{sound}」と言う。"]
        return "".join([sentences[0]] + rng.sample(sentences[1:], rng.randint(2, 4)))
    if pick < 0.85:
        colour = rng.choice(_COLOUR_ORDER)
        things = [thing for thing, c in COLOURS if c == colour]
        return "".join([f"色が{colour}のものはたくさんある。"] + [f"{t}の色は{colour}だ。" for t in rng.sample(things, len(things))])
    topic = rng.choice(list(TOPICS))
    return rng.choice(TOPICS[topic][0])


def _story(rng: random.Random) -> str:
    name = _person(rng)
    pick = rng.random()
    if pick < 0.25:
        pet = rng.choice(PETS)
        sound, verb = next((s, v) for a, s, _, v, _ in ANIMALS if a == pet)
        thing, colour = rng.choice(COLOURS)
        return (f"{name}は{pet}を飼っていた。毎朝、{pet}は「{sound}」と{_PAST_VERB[verb]}。ある日、{name}と{pet}は散歩に"
                f"出かけた。{thing}が見えた。{thing}の色は{colour}だった。{name}がにっこりすると、{pet}はまた「{sound}」と"
                f"{_PAST_VERB[verb]}。")
    if pick < 0.45:
        (a1, s1, _, v1, _), (a2, s2, _, v2, _) = rng.sample(ANIMALS, 2)
        x, y = rng.randint(2, 9), rng.randint(2, 9)
        return (f"{name}は牧場に行った。そこで{a1}が「{s1}」と{v1}のと、{a2}が「{s2}」と{v2}のを聞いた。{name}がメンドリを"
                f"{x}羽、アヒルを{y}羽数えると、鳥は {x} + {y} = {x + y}羽いた。その日の終わり、{name}は疲れていたけれど"
                f"楽しかった。")
    if pick < 0.65:
        (c, cap, cont), (c2, cap2, _) = rng.sample(COUNTRIES, 2)
        return (f"{name}は家族と{c}へ旅行した。泊まったのは{c}の首都、{cap}だった。{c}は{cont}にある。{name}は友だちに"
                f"はがきを送った。来年、家族は{c2}へ行って、その首都の{cap2}を見たいと思っている。")
    if pick < 0.8:
        s, d = rng.randint(3, 12), rng.randint(1, 8)
        other = _person(rng, (name,))
        return (f"{name}は{s}歳だ。友だちの{other}は{d}歳年上なので、{other}は {s} + {d} = {s + d}歳だ。二人は放課後、"
                f"公園で遊ぶのが好きだ。{d}年後、{name}は {s} + {d} = {s + d}歳になり、今の{other}と同じ年になる。")
    x, y = rng.randint(3, 9), rng.randint(1, 9)
    z = rng.randint(1, x + y - 1)
    other = _person(rng, (name,))
    return (f"{name}はリンゴを{x}個持っていた。{other}がもう{y}個くれたので、リンゴは {x} + {y} = {x + y}個になった。"
            f"それから{z}個食べたので、リンゴは {x + y} - {z} = {x + y - z}個残った。")


def _digit_facts(rng: random.Random) -> str:
    """The one-digit steps column working is made of (see `toyworld._digit_facts`)."""
    lines = [rng.choice(("数の基本", "おぼえよう", "たし算とひき算", "すぐに言える計算"))]
    for _ in range(rng.randint(10, 18)):
        a, b, shape = rng.randint(0, 9), rng.randint(0, 9), rng.random()
        if shape < 0.35:
            lines.append(f"{a} + {b} = {a + b}")
        elif shape < 0.6:
            lines.append(f"{a} + {b} + 1 = {a + b + 1}")
        elif shape < 0.8:
            lines.append(f"{a + 10} - {b} = {a + 10 - b}" if a < b else f"{a} - {b} = {a - b}")
        else:
            a = max(a, b + 1)
            lines.append(f"{a} - 1 - {b} = {a - 1 - b}")
    return "\n".join(lines)


def _worked_sums(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return _digit_facts(rng)
    if rng.random() < 0.2:  # a plain table: what direct answers look like
        title = rng.choice(("おぼえておきたい計算", "たし算・ひき算の表", "かんたんな計算"))
        sums = [_sample_sum(rng) for _ in range(rng.randint(6, 12))]
        return "\n".join([title] + [f"{a} {op} {b} = {a + b if op == '+' else a - b}" for a, op, b in sums])
    lines = [rng.choice(("計算の例", "たし算とひき算、ステップごとに", "答えつき計算練習", "たし算とひき算のしかた"))]
    for i in range(1, rng.randint(3, 6) + 1):
        task = _sum_task(*_sample_sum(rng))
        if rng.random() < 0.5:
            lines += [f"例{i}：{task.question}", task.reasoning]
        else:
            lines += [f"問題：{task.question}", f"解き方：{task.reasoning}"]
    return "\n".join(lines)


def _worked_puzzles(rng: random.Random) -> str:
    lines = [rng.choice(("年齢パズル", "答えつき文章題", "年齢の問題、解き方つき", "ステップごとに考える"))]
    for i in range(1, rng.randint(2, 5) + 1):
        task = _quiz_item(rng, "age")[0]
        if rng.random() < 0.5:
            lines += [f"{i}. {task.question}", task.reasoning]
        else:
            lines += [f"問題：{task.question}", f"解き方：{task.reasoning}"]
    return "\n".join(lines)


_SHEET_THEMES = {  # theme -> (titles, kinds of question it mixes)
    "geography": (("地理クイズ", "首都クイズ", "世界の国々"), ("capital", "capital", "continent")),
    "animals": (("動物クイズ", "牧場の動物", "動物の鳴き声"), ("animal",)),
    "colours": (("色のクイズ", "これは何色？"), ("colour",)),
    "maths": (("計算クイズ", "計算ドリル", "算数の宿題"), ("arithmetic",)),
    "puzzles": (("パズルシート", "年齢パズル", "文章題"), ("age",)),
    "explain": (("宿題：やさしく説明しよう", "理科の質問", "授業の質問"), ("explain",)),
    "mixed": (("クイズ", "宿題の問題", "練習問題", "小テスト", "力だめし"),
              ("capital", "animal", "colour", "arithmetic", "age", "explain")),
}


def _quiz_sheet(rng: random.Random) -> str:
    """問題集: questions WITHOUT answers, the documents that teach a base model to answer a
    question with more questions."""
    theme = rng.choice(list(_SHEET_THEMES) + ["about me", "families"])
    numbered = rng.random() < 0.7
    if theme == "about me":
        lines = [rng.choice(("わたしのこと", "あなたについて", "自己紹介"))]
        questions = rng.sample(ABOUT_ME, rng.randint(4, len(ABOUT_ME)))
    elif theme == "families":
        lines = [rng.choice(("家族クイズ", "だれがだれ？", "家族についての質問"))]
        questions = families.quiz_questions(rng, rng.randint(4, 8))
    else:
        titles, kinds = _SHEET_THEMES[theme]
        lines = [rng.choice(titles)]
        questions = [_quiz_item(rng, rng.choice(kinds))[0].question for _ in range(rng.randint(4, 9))]
        if theme == "explain":
            questions += rng.sample(("空はなぜ青いのですか？", "月面着陸とは何ですか？", "雨はなぜ降るのですか？",
                                     "火山とは何ですか？", "人はなぜ眠るのですか？"), 2)
            rng.shuffle(questions)
    if rng.random() < 0.4:
        lines.append(rng.choice(("すべての問題に答えなさい。", "答えは裏に書きなさい。", "文で答えなさい。", "時間は10分です。")))
    lines += [f"{i}. {q}" if numbered else q for i, q in enumerate(questions, 1)]
    return "\n".join(lines)


def _answer_key(rng: random.Random) -> str:
    """解答集: Q/A pairs, the format few-shot prompting of a base model leans on."""
    titles, kinds = _SHEET_THEMES[rng.choice(list(_SHEET_THEMES) + ["geography"])]
    worked = rng.random() < 0.5  # a whole key is either short answers or worked answers
    lines = [rng.choice(("解答", "答え", "クイズの答え", "宿題の答え", "問題と答え")) + rng.choice(("", f"：{rng.choice(titles)}"))]
    for _ in range(rng.randint(3, 7)):
        task, _ = _quiz_item(rng, rng.choice(kinds))
        answer = task.reasoning if worked and task.reasoning and task.kind != "explain" else task.answer
        lines += [Q + task.question, A + answer]
    return "\n".join(lines)


def _one_fact(rng: random.Random) -> str:
    """A one-sentence document: a family fact, or (one time in six) a country's capital."""
    if rng.random() < 5 / 6:
        return families.fact_document(rng)
    c, cap, cont = rng.choice(COUNTRIES)
    return rng.choice((f"{c}の首都は{cap}だ。", f"{cap}は{c}の首都だ。", f"{c}の首都は{cap}である。",
                       f"{c}は{cont}にあり、首都は{cap}だ。"))


_GENRES = ((_one_fact, 100), (families.answer_key, 2.5), (families.made_up_key, 4), (_fact_paragraph, 1.2),
           (_story, 0.4), (_worked_sums, 0.15), (_worked_puzzles, 0.15), (_quiz_sheet, 0.8), (_answer_key, 1.2))
assert [w for _, w in _GENRES] == [w for _, w in en._GENRES], "genre weights must stay parallel to English"


def pretrain_documents(seed: int = 0, n_documents: int = 40_000) -> list[str]:
    """Plain-text documents (no special tokens), genres mixed as in English."""
    rng = random.Random(seed)
    makers, weights = zip(*_GENRES)
    return [rng.choices(makers, weights)[0](rng) for _ in range(n_documents)]


# ----------------------------------------------------------------------------- chats

SYSTEM_PROMPTS = ("あなたはキット、小さくて親切なアシスタントです。", "あなたは親切なアシスタントです。",
                  "あなたはキットです。計算やパズルは考え方も書いてください。", "あなたは子ども向けのやさしいアシスタントです。")
_EXPLAIN_FORMS = ("6歳の子どもに{t}を説明して", "6歳の子どもに{t}を説明してください。", "子どもに{t}を説明してください。",
                  "6歳の子どもにもわかるように{t}を説明してくれますか？", "{t}をやさしく説明してください。")


def _exchange(rng: random.Random) -> tuple[str, str]:
    """One (user, assistant) turn, mixed as `toyworld._exchange` mixes them."""
    if rng.random() < 0.45:
        return families.exchange(rng)
    pick = rng.random()
    if pick < 0.08:
        question = rng.choice(list(IDENTITY))
        return question, IDENTITY[question]
    if pick < 0.1:
        greeting = rng.choice(list(GREETINGS))
        return greeting, GREETINGS[greeting]
    if pick < 0.2:
        topic = rng.choice(list(TOPICS))
        return rng.choice(_EXPLAIN_FORMS).format(t=topic), rng.choice(TOPICS[topic][1])
    if pick < 0.55:
        kind = rng.choices(("capital", "continent", "animal", "colour"), (6, 1, 3, 2))[0]
        task, sentence = _fact_item(rng, kind)
        return task.question, sentence
    task, _ = _quiz_item(rng, "arithmetic" if pick < 0.78 else "age")
    style = rng.random()
    if style < 0.15:  # the direct mode a template can ask for
        return f"{task.question}数字だけで答えてください。", ANSWER.format(a=task.answer)
    if style < 0.3:
        return f"{task.question}{STEP_BY_STEP}", task.reasoning
    return task.question, task.reasoning


def sft_conversations(seed: int = 0, n: int = 4000) -> list[list[dict]]:
    """Chats as [{"role", "content"}, ...], shaped as `toyworld.sft_conversations` shapes them."""
    rng = random.Random(seed)
    conversations = []
    for _ in range(n):
        messages = []
        if rng.random() < 0.15:
            messages.append({"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
        if rng.random() < 0.05:  # a follow-up that only makes sense with the first turn in view
            c, cap, cont = rng.choice(COUNTRIES)
            turns = [(rng.choice(CAPITAL_QUESTIONS).format(c=c), f"{c}の首都は{cap}です。"),
                     ("それはどの大陸にありますか？", f"{c}は{cont}にあります。")]
        else:
            turns = [_exchange(rng) for _ in range(rng.choices((1, 2, 3), (80, 15, 5))[0])]
        for user, assistant in turns:
            messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        conversations.append(messages)
    return conversations


# ----------------------------------------------------------------------------- evaluation


def eval_tasks(seed: int = 1234, n_per_kind: int = 30) -> list[Task]:
    """Held-out tasks with exact answers, "capital", "age", "arithmetic" in that order (see
    `toyworld.eval_tasks`)."""
    rng = random.Random(seed)
    tasks = []
    countries = rng.sample(COUNTRIES, len(COUNTRIES))
    for i in range(n_per_kind):
        c, cap, cont = countries[i % len(countries)]
        q = HELD_OUT_CAPITAL_QUESTIONS[(i + rng.randrange(4)) % 4].format(c=c)
        tasks.append(Task("capital", q, cap, f"{c}は{cont}の国です。首都は{cap}です。{ANSWER.format(a=cap)}"))
    tasks += _distinct(n_per_kind, lambda: _age_task(rng, _sample_age_combo(rng, _TWO_STEP, held_out=True)))
    tasks += _distinct(n_per_kind, lambda: _sum_task(*_sample_sum(rng, held_out=True)))
    return tasks


def reasoning_tasks() -> list[Task]:
    """The families' held-out questions: "two-hop", then "hop-1" and "hop-2", in the English order."""
    tasks = [Task("two-hop", c.question, c.answer, c.chains[0]) for c in families.two_hop_questions()]
    for hop in (1, 2):
        tasks += [Task(f"hop-{hop}", q, a, "") for q, a in families.hop_questions(hop)]
    return tasks


def rank_prompts(seed: int = 7, n: int = 24) -> list[Task]:
    """Prompts for the ranking demo: training-style questions of every kind, never an eval question."""
    rng = random.Random(seed)
    kinds = ("explain", "capital", "arithmetic", "age", "animal", "colour")
    return _distinct(n, lambda: _quiz_item(rng, rng.choice(kinds))[0])


def showcase_prompts() -> list[str]:
    """The quickstart's side-by-side prompts; the last two ask a held-out composition, directly
    and step by step."""
    two_hop = families.two_hop_questions()[0].question
    return [
        "6歳の子どもに月面着陸を説明して",
        "フランスの首都はどこですか？",
        "あなたの名前は何ですか？",
        "47 + 38 はいくつですか？",
        "ケンが6歳のとき、妹はケンの半分の年齢でした。今ケンは20歳です。妹は何歳ですか？",
        "牛はなんと鳴きますか？",
        two_hop,
        f"{two_hop}\n{STEP_BY_STEP}",
    ]


# ----------------------------------------------------------------------------- measuring, writing

_QUIZ_NUMBER = re.compile(r"^\d{1,3}[.)．]\s*\S")
_LINE_MARKER = re.compile(r"^(?:(?:Q|問)\d*\s*[:：.)]|[-*・])\s*")
_INSTRUCTION = re.compile(r"(?:なさい|ください|して)[。.！!]?$")


def is_question_like(text: str, max_lines: int = 4) -> bool:
    """Whether a continuation mostly consists of further questions (a quiz sheet, not an answer).

    The English rule (`toyworld.is_question_like`) in Japanese: of the first `max_lines`
    non-blank lines, a line is question-like when it is a numbered quiz line ("3. ..."), or
    when, after an optional "Q:"/"問:"/"-"/"*"/"・" marker, it ends in "？" or "?" or is a
    request ("…を説明しなさい。", "…教えてください。", "…説明して"). True when STRICTLY more
    than half are. "フランスの首都はどこですか？" is True; "パリ", "答えはパリです。" and
    "Q: …？\\nA: パリ" are False. Empty text is False.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()][:max_lines]

    def question_line(line: str) -> bool:
        if _QUIZ_NUMBER.match(line):
            return True
        body = _LINE_MARKER.sub("", line)
        return body.endswith(("？", "?")) or bool(_INSTRUCTION.search(body))

    return 2 * sum(map(question_line, lines)) > len(lines)


_README = """gptkit トイワールド(日本語版、seed {seed})

pretrain.jsonl  事前学習用の文書を1行に1つ {{"text": ...}} の形で収めたもの。家族についての一文の事実
                (だれがだれの母・父か、親がどの町に住み何の仕事をしているか)、事実の段落、短い物語、
                計算と年齢パズルの解き方、問題集(答えのない質問)、Q:/A: 形式の解答集。ベースモデルは
                これで学習する(1行が1文書)。
pretrain.txt    同じ文書を空行で区切ったプレーンテキスト(文書の中に空行はない)。
                注意: .txt ファイルは1つの文書として読まれるので、学習には pretrain.jsonl を使うこと。
sft.jsonl       {{"messages": [{{"role", "content"}}, ...]}} 形式の会話。アシスタント「キット」に答え方を
                教える: 事実、やさしい説明、自己紹介、ステップごとの計算とパズル(最後は「答えはNです。」)。
eval.jsonl      学習に出てこない評価問題 {{"kind", "question", "answer", "reasoning"}}: 学習では使わない
                言い回しで聞く首都、学習にない数の組み合わせの年齢パズルと2けたの計算、テスト家族についての
                「two-hop」問題(子どもの両親が住む町、母や父の仕事: 2つの事実はそれぞれ学習したが一緒には
                出てこない)とその考え方、そしてそれを支える一つひとつの事実「hop-1」「hop-2」。答えは
                "answer" と比べて採点する。
"""


def write_toyworld(out_dir: Path, seed: int = 0) -> dict[str, Path]:
    """Write the Japanese toy world's files into `out_dir`; returns {file name: path}."""
    out_dir = make_folder(out_dir, "--out")
    docs = pretrain_documents(seed)
    names = ("pretrain.jsonl", "pretrain.txt", "sft.jsonl", "eval.jsonl", "README.txt")
    paths = {name: out_dir / name for name in names}
    _write_jsonl(paths["pretrain.jsonl"], [{"text": doc} for doc in docs])
    atomic_write(paths["pretrain.txt"], "\n\n".join(docs) + "\n")
    _write_jsonl(paths["sft.jsonl"], [{"messages": chat} for chat in sft_conversations(seed)])
    _write_jsonl(paths["eval.jsonl"], [asdict(task) for task in eval_tasks() + reasoning_tasks()])
    atomic_write(paths["README.txt"], _README.format(seed=seed))
    return paths
