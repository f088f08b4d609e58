"""Generated Japanese documents for tokenizer tests and bench/ja_split.py: a stand-in for the
Japanese toy world until it lands (families, towns, jobs, countries and capitals, ages,
arithmetic, questions answered with 「答えは〜です。」, in です/ます and plain style)."""

import random

_KANA = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワン"
_NAME_KANJI = "太郎花子健美咲大輔陽翔直誠恵拓也彩真由香明弘和正信幸春夏秋冬一二三"
_PLACE_KANJI = "山田中川本木村井藤原小大高石松林森池野島北南東西新上下宮沢谷岡崎浜"
JOBS = ["先生", "医者", "看護師", "パン屋", "農家", "大工", "警察官", "エンジニア", "デザイナー", "コック",
        "運転手", "郵便配達員", "漁師", "弁護士", "プログラマー", "歌手", "店員", "記者", "画家", "研究者"]
COUNTRIES = [("日本", "東京"), ("フランス", "パリ"), ("イタリア", "ローマ"), ("ケニア", "ナイロビ"),
             ("ドイツ", "ベルリン"), ("スペイン", "マドリード"), ("中国", "北京"), ("韓国", "ソウル"),
             ("エジプト", "カイロ"), ("ブラジル", "ブラジリア"), ("カナダ", "オタワ"), ("タイ", "バンコク"),
             ("イギリス", "ロンドン"), ("ロシア", "モスクワ"), ("ペルー", "リマ"), ("ガーナ", "アクラ"),
             ("インド", "ニューデリー"), ("メキシコ", "メキシコシティ"), ("トルコ", "アンカラ"), ("チリ", "サンティアゴ")]
RELATIONS = ["父", "母", "兄", "姉", "弟", "妹", "祖父", "祖母", "息子", "娘", "おじ", "おば", "いとこ", "友達"]
ANIMALS = [("犬", "ワンワン"), ("猫", "ニャー"), ("牛", "モー"), ("鶏", "コケコッコー"), ("カエル", "ケロケロ"),
           ("羊", "メー"), ("豚", "ブーブー"), ("カラス", "カーカー")]
FOODS = ["りんご", "みかん", "パン", "ご飯", "ラーメン", "すし", "カレー", "おにぎり", "ケーキ", "お茶",
         "うどん", "そば", "魚", "卵", "トマト", "チーズ", "牛乳", "コーヒー", "みそ汁", "やきとり"]
HOBBIES = ["本を読むこと", "サッカー", "ピアノを弾くこと", "料理", "散歩", "絵を描くこと", "写真", "釣り",
           "山に登ること", "映画を見ること", "ギター", "水泳", "テニス", "歌を歌うこと"]
WHEN = ["毎朝", "毎晩", "昨日", "今日", "明日", "先週", "週末に", "夏に", "冬に", "去年", "ときどき", "いつも"]
# verb: (polite present, plain present, polite past, plain past, negative polite, negative plain)
VERBS = [("食べます", "食べる", "食べました", "食べた", "食べません", "食べない"),
         ("飲みます", "飲む", "飲みました", "飲んだ", "飲みません", "飲まない"),
         ("買います", "買う", "買いました", "買った", "買いません", "買わない"),
         ("作ります", "作る", "作りました", "作った", "作りません", "作らない"),
         ("好きです", "好きだ", "好きでした", "好きだった", "好きではありません", "好きではない")]
PLACES = ["駅", "学校", "病院", "図書館", "公園", "市場", "港", "工場", "お寺", "神社", "スーパー", "レストラン"]
ADJ = ["大きい", "小さい", "古い", "新しい", "静かな", "にぎやかな", "きれいな", "有名な", "遠い", "近い"]
COUNTERS = [("歳", "年齢"), ("人", "家族の人数"), ("本", "ペンの数"), ("つ", "りんごの数"), ("匹", "猫の数"),
            ("冊", "本の数"), ("台", "車の数"), ("枚", "切手の数")]


def _given(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return "".join(rng.choice(_KANA) for _ in range(rng.randint(2, 4)))
    return "".join(rng.choice(_NAME_KANJI) for _ in range(rng.randint(1, 2))) + rng.choice(["", "子", "男", "美"])


def _family(rng: random.Random) -> str:
    return rng.choice(_PLACE_KANJI) + rng.choice(_PLACE_KANJI)


def _town(rng: random.Random) -> str:
    return _family(rng) + rng.choice(["市", "町", "村", ""])


def _sentence(rng: random.Random, polite: bool) -> str:
    def style(polite_form: str, plain_form: str) -> str:
        return polite_form if polite else plain_form

    name = _family(rng) + rng.choice(["さん", "先生", ""]) if rng.random() < 0.3 else _given(rng)
    other, town, job = _given(rng), _town(rng), rng.choice(JOBS)
    country, capital = rng.choice(COUNTRIES)
    kind = rng.randrange(16)
    if kind == 0:
        return f"{name}は{town}に住んでいます。" if polite else f"{name}は{town}に住んでいる。"
    if kind == 1:
        return f"{name}の仕事は{job}{style('です', 'だ')}。"
    if kind == 2:
        return f"{name}は{rng.randint(3, 99)}歳{style('です', 'だ')}。"
    if kind == 3:
        return f"{name}の{rng.choice(RELATIONS)}は{other}{style('です', 'だ')}。"
    if kind == 4:
        return f"{country}の首都は{capital}{style('です', 'である')}。"
    if kind == 5:
        return f"質問：{country}の首都はどこですか？\n答えは{capital}です。"
    if kind == 6:
        return f"質問：{name}の{rng.choice(RELATIONS)}は誰ですか？\n答えは{other}です。"
    if kind == 7:
        a, b = rng.randint(0, 999), rng.randint(0, 999)
        wide = rng.random() < 0.2  # full-width digits, as Japanese text often has
        digits = (lambda n: str(n).translate(str.maketrans("0123456789", "０１２３４５６７８９"))) if wide else str
        return f"{digits(a)}たす{digits(b)}はいくつですか？答えは{digits(a + b)}です。"
    if kind == 8:
        animal, sound = rng.choice(ANIMALS)
        return f"{animal}は「{sound}」と{style('鳴きます', '鳴く')}。"
    if kind == 9:
        verb = rng.choice(VERBS)
        form = rng.choice([(0, 1), (2, 3), (4, 5)])
        return f"{name}は{rng.choice(WHEN)}{rng.choice(FOODS)}を{verb[form[0]] if polite else verb[form[1]]}。"
    if kind == 10:
        return f"{name}の趣味は{rng.choice(HOBBIES)}{style('です', 'だ')}。"
    if kind == 11:
        count, (unit, what) = rng.randint(1, 30), rng.choice(COUNTERS)
        return f"{name}の{what}はいくつですか？答えは{count}{unit}です。"
    if kind == 12:
        return f"{name}は{town}の{rng.choice(PLACES)}で{job}として{style('働いていました', '働いていた')}。"
    if kind == 13:
        return f"{town}には{rng.choice(ADJ)}{rng.choice(PLACES)}が{style('あります', 'ある')}。"
    if kind == 14:
        return f"{name}と{other}は{rng.choice(RELATIONS)}{style('ではありません', 'ではない')}。"
    return f"{rng.choice(WHEN)}、{name}は{other}と{town}の{rng.choice(PLACES)}へ{style('行きました', '行った')}。"


def japanese_documents(n: int, seed: int = 0) -> list[str]:
    """`n` documents of 1-6 sentences, each document in one style (です/ます or plain)."""
    rng = random.Random(seed)
    docs = []
    for _ in range(n):
        polite = rng.random() < 0.6
        sep = rng.choice(["", "\n", ""])
        docs.append(sep.join(_sentence(rng, polite) for _ in range(rng.randint(1, 6))))
    return docs
