"""A seeded generator of realistic Animagine XL 4.0 prompts, shared by the benchmarks.

``make_prompts(n, seed=0, tags=30)`` returns ``n`` prompt strings of exactly ``tags`` tags each,
written the way people write them for Animagine XL 4.0::

    1girl, arima kana, oshi no ko, safe, (smile:1.2), long hair, ..., year 2023,
    masterpiece, high score, great score, absurdres

* a subject-count tag (``1girl``, ``1boy``, ``1other``, ``2girls``, ``1girl, 1boy``...);
* zero to two characters (real Danbooru names, many with a qualifier written escaped,
  ``firefly \\(honkai: star rail\\)``), followed by their series;
* a rating (``safe``, ``sensitive``, ``nsfw``, ``explicit``);
* general Danbooru tags (about 20) from a list of ~340 common ones, some emphasised with A1111
  syntax: ``(tag:1.2)``, ``(tag)``, ``((tag))``, ``[tag]`` and groups ``(a, b:1.1)``; a few
  prompts spell them Danbooru-style with underscores;
* an optional ``year N`` and the 4.0 quality tags at the end (some prompts put them first, the
  3.x habit).

Every name is real: the characters and series are all in animagine's shipped tag database and
no general tag is. The same ``seed`` always gives the same prompts (``random.Random(seed)``).
Run ``python benchmarks/_corpus.py`` to print a few and check the tag counts.
"""

from __future__ import annotations

import random
import re
from typing import Final

__all__ = ["CHARACTERS", "GENERAL", "make_prompts"]

#: (character, series) pairs, Danbooru names with spaces; qualifiers unescaped here.
CHARACTERS: Final[tuple[tuple[str, str], ...]] = (
    ("arima kana", "oshi no ko"),
    ("hoshino ai (oshi no ko)", "oshi no ko"),
    ("hoshino ruby", "oshi no ko"),
    ("kurokawa akane", "oshi no ko"),
    ("hoshimachi suisei", "hololive"),
    ("gawr gura", "hololive"),
    ("houshou marine", "hololive"),
    ("usada pekora", "hololive"),
    ("shirakami fubuki", "hololive"),
    ("minato aqua", "hololive"),
    ("inugami korone", "hololive"),
    ("nekomata okayu", "hololive"),
    ("sakura miko", "hololive"),
    ("shiranui flare", "hololive"),
    ("tokoyami towa", "hololive"),
    ("ookami mio", "hololive"),
    ("mori calliope", "hololive"),
    ("ninomae ina'nis", "hololive"),
    ("takanashi kiara", "hololive"),
    ("watson amelia", "hololive"),
    ("ouro kronii", "hololive"),
    ("nanashi mumei", "hololive"),
    ("hakos baelz", "hololive"),
    ("la+ darknesss", "hololive"),
    ("murasaki shion", "hololive"),
    ("amane kanata", "hololive"),
    ("firefly (honkai: star rail)", "honkai: star rail"),
    ("march 7th (honkai: star rail)", "honkai: star rail"),
    ("stelle (honkai: star rail)", "honkai: star rail"),
    ("kafka (honkai: star rail)", "honkai: star rail"),
    ("silver wolf (honkai: star rail)", "honkai: star rail"),
    ("acheron (honkai: star rail)", "honkai: star rail"),
    ("robin (honkai: star rail)", "honkai: star rail"),
    ("sparkle (honkai: star rail)", "honkai: star rail"),
    ("black swan (honkai: star rail)", "honkai: star rail"),
    ("ruan mei (honkai: star rail)", "honkai: star rail"),
    ("kiana kaslana", "honkai (series)"),
    ("raiden mei", "honkai (series)"),
    ("elysia (honkai impact)", "honkai (series)"),
    ("hatsune miku", "vocaloid"),
    ("kagamine rin", "vocaloid"),
    ("kagamine len", "vocaloid"),
    ("megurine luka", "vocaloid"),
    ("kasane teto", "utau"),
    ("raiden shogun", "genshin impact"),
    ("hu tao (genshin impact)", "genshin impact"),
    ("ganyu (genshin impact)", "genshin impact"),
    ("keqing (genshin impact)", "genshin impact"),
    ("lumine (genshin impact)", "genshin impact"),
    ("paimon (genshin impact)", "genshin impact"),
    ("furina (genshin impact)", "genshin impact"),
    ("nahida (genshin impact)", "genshin impact"),
    ("yae miko", "genshin impact"),
    ("kamisato ayaka", "genshin impact"),
    ("nilou (genshin impact)", "genshin impact"),
    ("klee (genshin impact)", "genshin impact"),
    ("eula (genshin impact)", "genshin impact"),
    ("yoimiya (genshin impact)", "genshin impact"),
    ("navia (genshin impact)", "genshin impact"),
    ("arlecchino (genshin impact)", "genshin impact"),
    ("zhongli (genshin impact)", "genshin impact"),
    ("xiao (genshin impact)", "genshin impact"),
    ("venti (genshin impact)", "genshin impact"),
    ("aether (genshin impact)", "genshin impact"),
    ("frieren", "sousou no frieren"),
    ("fern (sousou no frieren)", "sousou no frieren"),
    ("stark (sousou no frieren)", "sousou no frieren"),
    ("himmel (sousou no frieren)", "sousou no frieren"),
    ("gotoh hitori", "bocchi the rock!"),
    ("ijichi nijika", "bocchi the rock!"),
    ("yamada ryo", "bocchi the rock!"),
    ("kita ikuyo", "bocchi the rock!"),
    ("hiroi kikuri", "bocchi the rock!"),
    ("makima (chainsaw man)", "chainsaw man"),
    ("power (chainsaw man)", "chainsaw man"),
    ("denji (chainsaw man)", "chainsaw man"),
    ("reze (chainsaw man)", "chainsaw man"),
    ("higashiyama kobeni", "chainsaw man"),
    ("yor briar", "spy x family"),
    ("anya (spy x family)", "spy x family"),
    ("twilight (spy x family)", "spy x family"),
    ("kitagawa marin", "sono bisque doll wa koi wo suru"),
    ("kochou shinobu", "kimetsu no yaiba"),
    ("kamado nezuko", "kimetsu no yaiba"),
    ("kamado tanjirou", "kimetsu no yaiba"),
    ("kanroji mitsuri", "kimetsu no yaiba"),
    ("gojou satoru", "jujutsu kaisen"),
    ("itadori yuuji", "jujutsu kaisen"),
    ("fushiguro megumi", "jujutsu kaisen"),
    ("kugisaki nobara", "jujutsu kaisen"),
    ("ryoumen sukuna (jujutsu kaisen)", "jujutsu kaisen"),
    ("rem (re:zero)", "re:zero kara hajimeru isekai seikatsu"),
    ("ram (re:zero)", "re:zero kara hajimeru isekai seikatsu"),
    ("emilia (re:zero)", "re:zero kara hajimeru isekai seikatsu"),
    ("megumin", "kono subarashii sekai ni shukufuku wo!"),
    ("aqua (konosuba)", "kono subarashii sekai ni shukufuku wo!"),
    ("darkness (konosuba)", "kono subarashii sekai ni shukufuku wo!"),
    ("zero two (darling in the franxx)", "darling in the franxx"),
    ("asuna (sao)", "sword art online"),
    ("kirito", "sword art online"),
    ("sinon", "sword art online"),
    ("souryuu asuka langley", "neon genesis evangelion"),
    ("ayanami rei", "neon genesis evangelion"),
    ("ikari shinji", "neon genesis evangelion"),
    ("makinami mari illustrious", "neon genesis evangelion"),
    ("hakurei reimu", "touhou"),
    ("kirisame marisa", "touhou"),
    ("remilia scarlet", "touhou"),
    ("flandre scarlet", "touhou"),
    ("izayoi sakuya", "touhou"),
    ("konpaku youmu", "touhou"),
    ("saigyouji yuyuko", "touhou"),
    ("patchouli knowledge", "touhou"),
    ("cirno", "touhou"),
    ("komeiji koishi", "touhou"),
    ("komeiji satori", "touhou"),
    ("fujiwara no mokou", "touhou"),
    ("kochiya sanae", "touhou"),
    ("yakumo yukari", "touhou"),
    ("shameimaru aya", "touhou"),
    ("reisen udongein inaba", "touhou"),
    ("artoria pendragon (fate)", "fate (series)"),
    ("saber (fate)", "fate (series)"),
    ("tohsaka rin", "fate (series)"),
    ("matou sakura", "fate (series)"),
    ("mash kyrielight", "fate/grand order"),
    ("jeanne d'arc alter (fate)", "fate/grand order"),
    ("scathach (fate)", "fate/grand order"),
    ("gilgamesh (fate)", "fate (series)"),
    ("ishtar (fate)", "fate/grand order"),
    ("nero claudius (fate)", "fate (series)"),
    ("illyasviel von einzbern", "fate (series)"),
    ("shiroko (blue archive)", "blue archive"),
    ("hoshino (blue archive)", "blue archive"),
    ("yuuka (blue archive)", "blue archive"),
    ("aris (blue archive)", "blue archive"),
    ("mika (blue archive)", "blue archive"),
    ("hina (blue archive)", "blue archive"),
    ("asuna (blue archive)", "blue archive"),
    ("arona (blue archive)", "blue archive"),
    ("plana (blue archive)", "blue archive"),
    ("noa (blue archive)", "blue archive"),
    ("toki (blue archive)", "blue archive"),
    ("kisaki (blue archive)", "blue archive"),
    ("serina (blue archive)", "blue archive"),
    ("sensei (blue archive)", "blue archive"),
    ("amiya (arknights)", "arknights"),
    ("texas (arknights)", "arknights"),
    ("exusiai (arknights)", "arknights"),
    ("surtr (arknights)", "arknights"),
    ("w (arknights)", "arknights"),
    ("skadi (arknights)", "arknights"),
    ("ch'en (arknights)", "arknights"),
    ("doctor (arknights)", "arknights"),
    ("atago (azur lane)", "azur lane"),
    ("taihou (azur lane)", "azur lane"),
    ("belfast (azur lane)", "azur lane"),
    ("enterprise (azur lane)", "azur lane"),
    ("kaga (kancolle)", "kantai collection"),
    ("shimakaze (kancolle)", "kantai collection"),
    ("hibiki (kancolle)", "kantai collection"),
    ("kongou (kancolle)", "kantai collection"),
    ("special week (umamusume)", "umamusume"),
    ("gold ship (umamusume)", "umamusume"),
    ("rice shower (umamusume)", "umamusume"),
    ("tokai teio (umamusume)", "umamusume"),
    ("kitasan black (umamusume)", "umamusume"),
    ("hk416 (girls' frontline)", "girls' frontline"),
    ("m4a1 (girls' frontline)", "girls' frontline"),
    ("2b (nier:automata)", "nier:automata"),
    ("9s (nier:automata)", "nier:automata"),
    ("a2 (nier:automata)", "nier:automata"),
    ("tifa lockhart", "final fantasy vii"),
    ("aerith gainsborough", "final fantasy vii"),
    ("cloud strife", "final fantasy vii"),
    ("lucy (cyberpunk)", "cyberpunk edgerunners"),
    ("rebecca (cyberpunk)", "cyberpunk edgerunners"),
    ("princess zelda", "the legend of zelda"),
    ("link", "the legend of zelda"),
    ("pikachu", "pokemon"),
    ("serena (pokemon)", "pokemon"),
    ("lillie (pokemon)", "pokemon"),
    ("marnie (pokemon)", "pokemon"),
    ("nessa (pokemon)", "pokemon"),
    ("gardevoir", "pokemon"),
    ("ash ketchum", "pokemon"),
    ("inkling girl", "splatoon (series)"),
    ("samus aran", "metroid"),
    ("rosalina", "mario (series)"),
    ("princess peach", "mario (series)"),
    ("lucy heartfilia", "fairy tail"),
    ("erza scarlet", "fairy tail"),
    ("nami (one piece)", "one piece"),
    ("nico robin", "one piece"),
    ("monkey d. luffy", "one piece"),
    ("roronoa zoro", "one piece"),
    ("boa hancock", "one piece"),
    ("uzumaki naruto", "naruto (series)"),
    ("hyuuga hinata", "naruto (series)"),
    ("haruno sakura", "naruto (series)"),
    ("uchiha sasuke", "naruto (series)"),
    ("son goku", "dragon ball"),
    ("bulma", "dragon ball"),
    ("android 18", "dragon ball"),
    ("kousaka honoka", "love live!"),
    ("minami kotori", "love live!"),
    ("yazawa nico", "love live!"),
    ("nishikino maki", "love live!"),
    ("hinoshita kaho", "link! like! love live!"),
    ("otomune kozue", "link! like! love live!"),
    ("shimamura uzuki", "idolmaster"),
    ("shibuya rin", "idolmaster"),
    ("amami haruka", "idolmaster"),
    ("hoshii miki", "idolmaster"),
    ("jinx (league of legends)", "league of legends"),
    ("ahri (league of legends)", "league of legends"),
    ("d.va (overwatch)", "overwatch"),
    ("tracer (overwatch)", "overwatch"),
    ("mercy (overwatch)", "overwatch"),
    ("kiryu coco", "hololive"),
    ("nakiri ayame", "hololive"),
    ("shirogane noel", "hololive"),
)

#: Common Danbooru general tags.
GENERAL: Final[tuple[str, ...]] = (
    "solo", "smile", "long hair", "short hair", "medium hair", "very long hair",
    "looking at viewer", "open mouth", "closed mouth", "blush", "bangs", "blue eyes", "red eyes",
    "green eyes", "brown eyes", "purple eyes", "yellow eyes", "black hair", "blonde hair",
    "brown hair", "white hair", "pink hair", "blue hair", "red hair", "silver hair", "grey hair",
    "purple hair", "green hair", "multicolored hair", "two-tone hair", "streaked hair",
    "gradient hair", "hair between eyes", "hair ornament", "hair ribbon", "hair bow", "hairband",
    "hairclip", "hair flower", "twintails", "ponytail", "side ponytail", "braid", "single braid",
    "twin braids", "hair bun", "double bun", "ahoge", "sidelocks", "blunt bangs", "swept bangs",
    "animal ears", "cat ears", "fox ears", "rabbit ears", "wolf ears", "horns", "halo", "wings",
    "tail", "cat tail", "fox tail", "pointy ears", "breasts", "large breasts", "medium breasts",
    "small breasts", "cleavage", "collarbone", "navel", "bare shoulders", "thighs", "thighhighs",
    "black thighhighs", "white thighhighs", "pantyhose", "black pantyhose", "zettai ryouiki",
    "skirt", "pleated skirt", "miniskirt", "black skirt", "shirt", "white shirt", "collared shirt",
    "dress", "white dress", "black dress", "sleeveless", "sleeveless dress", "long sleeves",
    "short sleeves", "puffy sleeves", "wide sleeves", "detached sleeves", "jacket", "open jacket",
    "hood", "hoodie", "coat", "cardigan", "sweater", "vest", "school uniform", "serafuku",
    "sailor collar", "necktie", "bowtie", "ribbon", "neck ribbon", "choker", "necklace", "jewelry",
    "earrings", "gloves", "black gloves", "white gloves", "fingerless gloves", "elbow gloves",
    "shoes", "boots", "thigh boots", "high heels", "socks", "kneehighs", "hat", "beret",
    "witch hat", "headphones", "glasses", "eyepatch", "mask", "bow", "frills", "lace trim", "maid",
    "maid headdress", "apron", "kimono", "japanese clothes", "yukata", "china dress", "swimsuit",
    "bikini", "one-piece swimsuit", "leotard", "bodysuit", "armor", "cape", "cloak", "scarf",
    "belt", "shorts", "denim shorts", "pants", "midriff", "crop top", "off shoulder", "strapless",
    "standing", "sitting", "lying", "on back", "on side", "kneeling", "squatting", "walking",
    "running", "jumping", "leaning forward", "arms up", "arms behind back", "hand up", "hands up",
    "hand on own chest", "hand on hip", "outstretched arm", "peace sign", "v", "pointing",
    "waving", "holding", "holding weapon", "holding sword", "holding gun", "holding umbrella",
    "holding book", "holding cup", "holding flower", "holding phone", "sword", "gun", "weapon",
    "katana", "staff", "umbrella", "book", "cup", "flower", "rose", "cherry blossoms", "petals",
    "food", "fruit", "bag", "phone", "upper body", "cowboy shot", "full body", "portrait",
    "close-up", "from above", "from below", "from side", "from behind", "dutch angle", "profile",
    "looking back", "looking away", "looking at another", "head tilt", "eyes closed",
    "one eye closed", "wink", "tongue out", "teeth", "fang", "grin", "laughing", "crying", "tears",
    "embarrassed", "angry", "sad", "surprised", "expressionless", "smug", "outdoors", "indoors",
    "sky", "blue sky", "cloud", "cloudy sky", "night", "night sky", "starry sky", "moon",
    "full moon", "sun", "sunset", "sunlight", "day", "tree", "grass", "water", "ocean", "beach",
    "river", "rain", "snow", "city", "building", "street", "window", "classroom", "bedroom", "bed",
    "chair", "table", "couch", "stairs", "forest", "field", "mountain", "flower field", "shrine",
    "torii", "simple background", "white background", "grey background", "gradient background",
    "transparent background", "depth of field", "blurry background", "bokeh", "light particles",
    "lens flare", "light rays", "backlighting", "chromatic aberration", "glowing", "sparkle",
    "wind", "floating hair", "motion blur", "english text", "signature", "border", "letterboxed",
    "multiple views", "official alternate costume", "cosplay", "animal", "cat", "dog", "bird",
    "butterfly", "fish", "heart", "star (symbol)", "musical note", "spoken heart",
    "blush stickers", "sweat", "flying sweatdrops", "v-shaped eyebrows", "thick eyebrows",
    "hair over one eye", "heterochromia", "slit pupils", "symbol-shaped pupils",
    "heart-shaped pupils", "glowing eyes", "makeup", "lipstick", "nail polish", "mole",
    "mole under eye", "freckles", "dark skin", "tan", "muscular", "abs", "scar", "bandages",
    "band-aid",
)  # fmt: skip

SUBJECTS: Final[tuple[tuple[tuple[str, ...], int, float], ...]] = (
    # (subject tags, characters wanted (upper bound), weight)
    (("1girl",), 1, 0.55),
    (("1boy",), 1, 0.12),
    (("1other",), 1, 0.03),
    (("2girls",), 2, 0.10),
    (("1girl", "1boy"), 2, 0.08),
    (("2boys",), 2, 0.02),
    (("multiple girls",), 2, 0.04),
    (("1girl", "solo"), 1, 0.06),
)
RATINGS: Final = ("safe", "safe", "safe", "sensitive", "sensitive", "nsfw", "explicit")
QUALITY: Final = ("masterpiece", "high score", "great score", "absurdres")
QUALITY_VARIANTS: Final = (
    QUALITY,
    QUALITY,
    QUALITY,
    ("masterpiece", "best quality", "high score", "absurdres"),
    ("masterpiece", "high score", "absurdres"),
    ("masterpiece", "best quality"),
)
WEIGHTS: Final = ("0.8", "0.9", "1.1", "1.2", "1.2", "1.3", "1.4", "1.5")

_ESCAPE: Final = re.compile(r"([\\()\[\]])")


def _escape(name: str) -> str:
    return _ESCAPE.sub(r"\\\1", name)


def _emphasise(rng: random.Random, text: str, rate: float) -> str:
    """Wrap ``text`` in A1111 emphasis with probability ``rate``."""
    roll = rng.random()
    if roll >= rate:
        return text
    roll /= rate
    if roll < 0.5:
        return f"({text}:{rng.choice(WEIGHTS)})"
    if roll < 0.7:
        return f"({text})"
    if roll < 0.85:
        return f"(({text}))"
    return f"[{text}]"


def _general(rng: random.Random, count: int, underscores: bool) -> list[str]:
    """``count`` general tags as text pieces (a group counts each tag it holds)."""
    names = rng.sample(GENERAL, count)
    written = [_escape(n.replace(" ", "_") if underscores else n) for n in names]
    pieces: list[str] = []
    index = 0
    group_at = rng.randrange(count - 3) if rng.random() < 0.3 else -1
    while index < count:
        if index == group_at:
            size = rng.choice((2, 2, 3))
            inner = ", ".join(written[index : index + size])
            pieces.append(f"({inner}:{rng.choice(WEIGHTS)})")
            index += size
            continue
        pieces.append(_emphasise(rng, written[index], 0.2))
        index += 1
    return pieces


def _prompt(rng: random.Random, tags: int) -> str:
    subjects, most, _ = rng.choices(SUBJECTS, weights=[s[2] for s in SUBJECTS])[0]
    wanted = rng.choices((0, 1, 2), weights=(0.25, 0.6, 0.15))[0]
    pairs = rng.sample(CHARACTERS, min(wanted, most))
    series = list(dict.fromkeys(s for _, s in pairs))
    rating = rng.choice(RATINGS)
    year = f"year {rng.randint(2005, 2025)}" if rng.random() < 0.35 else None
    quality = rng.choice(QUALITY_VARIANTS)

    fixed = len(subjects) + len(pairs) + len(series) + 1 + (year is not None) + len(quality)
    general = _general(rng, tags - fixed, underscores=rng.random() < 0.08)

    characters = [_emphasise(rng, _escape(name), 0.12) for name, _ in pairs]
    ending = [*([year] if year else []), *(_emphasise(rng, q, 0.05) for q in quality)]
    identity = [*subjects, *characters, *map(_escape, series), rating]
    # One prompt in ten follows the 3.x habit of putting the quality tags first.
    first_quality = rng.random() < 0.1
    parts = [*ending, *identity, *general] if first_quality else [*identity, *general, *ending]
    return ", ".join(parts)


def make_prompts(n: int = 10_000, seed: int = 0, tags: int = 30) -> list[str]:
    """``n`` realistic Animagine XL 4.0 prompts of exactly ``tags`` tags each (``tags`` >= 16).

    Deterministic: the same arguments always give the same list.
    """
    if tags < 16:
        raise ValueError(f"tags must be at least 16, got {tags}")
    rng = random.Random(seed)
    return [_prompt(rng, tags) for _ in range(n)]


def _main() -> None:
    import statistics
    import sys

    import animagine

    prompts = make_prompts(2000)
    for text in prompts[:5]:
        print(text, end="\n\n")
    counts = [len(animagine.Prompt.parse(text)) for text in prompts]
    lengths = [len(text) for text in prompts]
    print(f"tags per prompt: min {min(counts)}, max {max(counts)}")
    print(f"characters per prompt: median {statistics.median(lengths)}, max {max(lengths)}")
    sys.exit(0 if set(counts) == {30} else 1)


if __name__ == "__main__":
    _main()
