"""The multilingual tasks of lm-evaluation-harness 0.4.13, with its prompts, choices, splits and few-shot rules.

Each task is a ``Task``: where its documents come from, and the three functions lm-eval's YAML and
``utils.py`` define (``doc_to_text``, ``doc_to_choice``, ``doc_to_target``), rewritten here from
``lm_eval/tasks/{xcopa,xwinograd,xstorycloze,xnli,paws-x}``. ``Task.requests`` turns a document and
its few-shot examples into (context, continuation) pairs exactly as ``ConfigurableTask.fewshot_context``
and ``construct_requests`` do for plain-text (no chat template) multiple-choice tasks.

XCOPA and XWinograd ship with the package (``tongues/eval/data/``); the others read JSON Lines files
from ``--data-dir`` (see ``DATA_LAYOUT``).
"""

from __future__ import annotations

import ast
import csv
import json
import random
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

DATA = Path(__file__).parent / "data"

DATA_LAYOUT = """\
--data-dir DIR holds one JSON Lines file per task, language and split, with the fields of the
Hugging Face dataset lm-eval loads:
  DIR/xstorycloze/<lang>/{train,eval}.jsonl        juletxara/xstory_cloze
  DIR/xnli/<lang>/{train,validation}.jsonl         facebook/xnli
  DIR/pawsx/<lang>/{train,test}.jsonl              google-research-datasets/paws-x
The train files are read only for --num-fewshot > 0. The dataset's own Parquet files serve as well
(needs pyarrow, which lm-eval's datasets brings): DIR/xnli/<lang>/validation.parquet, or as the
Hugging Face repository names them, validation-00000-of-00001.parquet or validation/0000.parquet.
To write a JSON Lines file from the Hugging Face copy:
  datasets.load_dataset("facebook/xnli", "en")["validation"].to_json("DIR/xnli/en/validation.jsonl",
                                                                     force_ascii=False)"""


class TaskDataError(Exception):
    """A task's data file is missing or malformed; the message names the file and what to do."""


Doc = dict[str, Any]


@dataclass
class Task:
    """One lm-eval task. ``eval_split`` is scored; few-shot examples come from ``fewshot_split``.

    ``exclude_eval_doc`` mirrors lm-eval passing the document to its sampler (``fewshot_split ==
    test_split``, both None for tasks without a test split): it draws K + 1 and drops the document.
    ``doc_to_text`` returning an int means "multiple inputs": the choices are contexts, the target the
    shared continuation (XWinograd).
    """

    name: str
    group: str
    load: Callable[[str, Path | None], list[Doc]]  # (split, data_dir) -> documents
    eval_split: str
    fewshot_split: str
    doc_to_text: Callable[[Doc], str | int]
    doc_to_choice: Callable[[Doc], list[str]]
    doc_to_target: Callable[[Doc], str | int]
    exclude_eval_doc: bool = False
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"
    _docs: dict[str, list[Doc]] = field(default_factory=dict, repr=False)

    def docs(self, split: str, data_dir: Path | None = None) -> list[Doc]:
        if split not in self._docs:
            self._docs[split] = self.load(split, data_dir)
        return self._docs[split]

    def gold(self, doc: Doc) -> int:
        """Index of the right choice (lm-eval: doc_to_text for multiple inputs, else doc_to_target)."""
        target = self.doc_to_text(doc) if self.multiple_input(doc) else self.doc_to_target(doc)
        if isinstance(target, str):
            choices = self.doc_to_choice(doc)
            return choices.index(target) if target in choices else -100
        return target if target < len(self.doc_to_choice(doc)) else -100

    def multiple_input(self, doc: Doc) -> bool:
        return isinstance(self.doc_to_text(doc), int)

    def fewshot_prefix(self, examples: list[Doc]) -> str:
        """The few-shot examples as text: question, target delimiter, answer, few-shot delimiter, each."""
        parts = []
        for example in examples:
            question, choices, answer = self.doc_to_text(example), self.doc_to_choice(example), self.doc_to_target(example)
            if isinstance(question, int):  # multiple inputs: the question is the chosen context
                question, choices = choices[question], None
            has_answer = answer is not None and answer != ""
            parts.append(question + (self.target_delimiter if has_answer else ""))
            if has_answer:
                parts.append((choices[answer] if choices and isinstance(answer, int) else answer) + self.fewshot_delimiter)
        return "".join(parts)

    def requests(self, doc: Doc, examples: list[Doc]) -> list[tuple[str, str]]:
        """The (context, continuation) pairs lm-eval scores for ``doc``, one per choice."""
        prefix = self.fewshot_prefix(examples)
        choices = self.doc_to_choice(doc)
        if self.multiple_input(doc):
            continuation = f"{self.target_delimiter}{self.doc_to_target(doc)}"
            return [(prefix + context, continuation) for context in choices]
        context = prefix + self.doc_to_text(doc)
        return [(context, f"{self.target_delimiter}{choice}") for choice in choices]


class FewshotSampler:
    """lm-eval's ``ContextSampler``: one ``random.Random(seed)`` per task, drawn from in document order."""

    def __init__(self, pool: list[Doc], seed: int | None = 1234):
        self.pool = pool
        self.rnd = random.Random(seed)

    def sample(self, count: int, eval_doc: Doc | None = None) -> list[Doc]:
        if count == 0:
            return []
        if not self.pool:
            raise TaskDataError("no documents to draw few-shot examples from")
        if eval_doc is None:
            return self.rnd.sample(self.pool, count)
        drawn = [doc for doc in self.rnd.sample(self.pool, count + 1) if doc != eval_doc][:count]
        if len(drawn) < count:  # the pool held copies of the document itself
            drawn = self.rnd.sample([doc for doc in self.pool if doc != eval_doc], count)
        return drawn


# -- data files ------------------------------------------------------------------------------------
def read_jsonl(path: Path) -> list[Doc]:
    """The objects of a JSON Lines file, with an error naming the file and line when one is malformed."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise TaskDataError(f"{path}: no such file.\n{DATA_LAYOUT}") from None
    docs = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as err:
            raise TaskDataError(f"{path}, line {number}: not JSON ({err.msg})") from None
        if not isinstance(doc, dict):
            raise TaskDataError(f"{path}, line {number}: expected a JSON object, found {type(doc).__name__}")
        docs.append(doc)
    return docs


def _require(docs: list[Doc], path: str, keys: tuple[str, ...]) -> list[Doc]:
    for number, doc in enumerate(docs, 1):
        missing = [key for key in keys if key not in doc]
        if missing:
            raise TaskDataError(f"{path}, document {number}: missing field(s) {', '.join(missing)}; "
                                f"expected {', '.join(keys)}")
    return docs


def _data_dir_loader(folder: str, language: str, keys: tuple[str, ...]):
    def load(split: str, data_dir: Path | None) -> list[Doc]:
        if data_dir is None:
            raise TaskDataError(f"task data for {folder}_{language} is not shipped with tongues; give --data-dir "
                                f"DIR with {folder}/{language}/{split}.jsonl in it.\n{DATA_LAYOUT}")
        path = Path(data_dir) / folder / language / f"{split}.jsonl"
        parquet = [] if path.is_file() else parquet_files(path.parent, split)  # a .jsonl comes first
        if parquet:
            return _require(read_parquet(parquet), str(parquet[0]), keys)
        return _require(read_jsonl(path), str(path), keys)
    return load


def parquet_files(folder: Path, split: str) -> list[Path]:
    """A split's Parquet files in ``folder``: ``<split>.parquet``, ``<split>-*.parquet`` (a Hugging Face
    dataset repository's shards) or ``<split>/*.parquet`` (its converted-to-Parquet branch), in order."""
    for pattern in (f"{split}.parquet", f"{split}-*.parquet", f"{split}/*.parquet"):
        found = sorted(folder.glob(pattern))
        if found:
            return found
    return []


def read_parquet(paths: list[Path]) -> list[Doc]:
    """The rows of ``paths`` (one split's shards, in order) as dicts, with errors naming the file."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise TaskDataError(f"{paths[0]}: reading Parquet needs pyarrow (pip install pyarrow), or give the split "
                            f"as {paths[0].parent / 'SPLIT.jsonl'}.\n{DATA_LAYOUT}") from None
    docs: list[Doc] = []
    for path in paths:
        try:
            docs.extend(pq.read_table(path).to_pylist())
        except Exception as err:  # pyarrow raises ArrowInvalid / OSError on a damaged file
            raise TaskDataError(f"{path}: not a readable Parquet file ({type(err).__name__}: {err})") from None
    return docs


# -- XCOPA (lm_eval/tasks/xcopa) --------------------------------------------------------------------
XCOPA_CONNECTORS = {
    "et": ("sest", "seetõttu"), "ht": ("poukisa", "donk sa"), "id": ("karena", "maka"),
    "it": ("perché", "quindi"), "qu": ("imataq", "chaymi"), "sw": ("kwa sababu", "kwa hiyo"),
    "ta": ("காரணமாக", "எனவே"), "th": ("เพราะ", "ดังนั้น"), "tr": ("çünkü", "bu yüzden"),
    "vi": ("bởi vì", "vì vậy"), "zh": ("因为", "所以"),
}
XCOPA_SPLITS = {"test": "test", "validation": "val"}


def _xcopa_task(language: str) -> Task:
    cause, effect = XCOPA_CONNECTORS[language]

    def load(split: str, data_dir: Path | None) -> list[Doc]:
        path = DATA / "xcopa" / "data" / language / f"{XCOPA_SPLITS[split]}.{language}.jsonl"
        return _require(read_jsonl(path), str(path), ("premise", "choice1", "choice2", "question", "label"))

    def doc_to_text(doc: Doc) -> str:
        # Drop the premise's final period and append the connector (utils.doc_to_text).
        return doc["premise"].strip()[:-1] + f" {cause if doc['question'] == 'cause' else effect}"

    def doc_to_choice(doc: Doc) -> list[str]:
        return [_lower_first(doc["choice1"]), _lower_first(doc["choice2"])]

    return Task(f"xcopa_{language}", "xcopa", load, "test", "validation", doc_to_text, doc_to_choice,
                lambda doc: doc["label"])


def _lower_first(text: str) -> str:
    return text[0].lower() + text[1:]


# -- XWinograd (lm_eval/tasks/xwinograd) -----------------------------------------------------------
XWINOGRAD_LANGUAGES = ("en", "fr", "jp", "pt", "ru", "zh")
# The PTB-style quote tokens of the TSV's token lists, as they appear in the raw text.
_QUOTE_TOKENS = {"``": ('"', "“", "«"), "''": ('"', "”", "»")}


@lru_cache(maxsize=None)
def xwinograd_docs(language: str) -> tuple[Doc, ...]:
    """XWinograd rows of one language in Muennighoff/xwinograd's fields: the sentence with its pronoun
    replaced by "_", option1, option2 (the TSV's candidates, in order) and answer ("1" or "2")."""
    path = DATA / "xwinograd" / "dataset.tsv"
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    except FileNotFoundError:
        raise TaskDataError(f"{path}: no such file; the tongues installation is incomplete") from None
    docs = []
    for number, row in enumerate(rows, 1):
        if len(row) != 7:
            raise TaskDataError(f"{path}, line {number}: expected 7 tab-separated columns, found {len(row)}")
        if row[0] != language:
            continue
        text, tokens, pronoun, candidates = row[3], json.loads(row[4]), json.loads(row[5]), json.loads(row[6])
        start, end = _pronoun_span(text, tokens, pronoun)
        correct = [candidate[3] for candidate in candidates]
        docs.append({"sentence": text[:start] + "_" + text[end:], "option1": candidates[0][0],
                     "option2": candidates[1][0], "answer": "1" if correct[0] else "2"})
    return tuple(docs)


def _pronoun_span(text: str, tokens: list[str], pronoun: list) -> tuple[int, int]:
    """Character span of the pronoun, whose position the TSV gives in tokens."""
    offsets, position = [], 0
    for token in tokens:
        found = -1
        for form in (token, *_QUOTE_TOKENS.get(token, ())):
            found = text.find(form, position)
            if found >= 0:
                offsets.append((found, found + len(form)))
                position = found + len(form)
                break
        if found < 0:
            offsets.append(None)
    first, last = pronoun[1][0], pronoun[1][1] - 1
    if offsets[first] and offsets[last] and text[offsets[first][0]:offsets[last][1]] == pronoun[0]:
        return offsets[first][0], offsets[last][1]
    match = re.search(rf"(?<!\w){re.escape(pronoun[0])}(?!\w)", text) or re.search(re.escape(pronoun[0]), text)
    return match.span()


def _xwinograd_task(language: str) -> Task:
    def load(split: str, data_dir: Path | None) -> list[Doc]:
        return [dict(doc) for doc in xwinograd_docs(language)]

    def doc_to_text(doc: Doc) -> int:
        return {"1": 0, "2": 1}[doc["answer"]]

    def doc_to_target(doc: Doc) -> str:
        return doc["sentence"][doc["sentence"].index("_") + 1:].strip()

    def doc_to_choice(doc: Doc) -> list[str]:
        index = doc["sentence"].index("_")
        return [doc["sentence"][:index] + option for option in (doc["option1"], doc["option2"])]

    # test is the only split, so few-shot examples come from it too (lm-eval's fallback), undeduplicated.
    return Task(f"xwinograd_{language}", "xwinograd", load, "test", "test", doc_to_text, doc_to_choice,
                doc_to_target)


# -- XStoryCloze (lm_eval/tasks/xstorycloze) -------------------------------------------------------
XSTORYCLOZE_LANGUAGES = ("ar", "en", "es", "eu", "hi", "id", "my", "ru", "sw", "te", "zh")
XSTORYCLOZE_FIELDS = ("input_sentence_1", "input_sentence_2", "input_sentence_3", "input_sentence_4",
                      "sentence_quiz1", "sentence_quiz2", "answer_right_ending")


def _xstorycloze_task(language: str) -> Task:
    def doc_to_text(doc: Doc) -> str:
        return " ".join(str(doc[f"input_sentence_{i}"]) for i in range(1, 5))

    def doc_to_target(doc: Doc) -> int:
        # "{{answer_right_ending-1}}" renders to a digit string, which lm-eval reads back as an int.
        return ast.literal_eval(str(int(doc["answer_right_ending"]) - 1))

    return Task(f"xstorycloze_{language}", "xstorycloze",
                _data_dir_loader("xstorycloze", language, XSTORYCLOZE_FIELDS), "eval", "train", doc_to_text,
                lambda doc: [doc["sentence_quiz1"], doc["sentence_quiz2"]], doc_to_target, exclude_eval_doc=True)


# -- XNLI (lm_eval/tasks/xnli) ---------------------------------------------------------------------
XNLI_WORDS = {  # language: (question word, entailment, neutral, contradiction), from xnli/utils.py
    "ar": ("صحيح", "نعم", "لذا", "رقم"), "bg": ("правилно", "да", "така", "не"),
    "de": ("richtig", "Ja", "Auch", "Nein"), "el": ("σωστός", "Ναί", "Έτσι", "όχι"),
    "en": ("right", "Yes", "Also", "No"), "es": ("correcto", "Sí", "Asi que", "No"),
    "fr": ("correct", "Oui", "Aussi", "Non"), "hi": ("सही", "हाँ", "इसलिए", "नहीं"),
    "ru": ("правильно", "Да", "Так", "Нет"), "sw": ("sahihi", "Ndiyo", "Hivyo", "Hapana"),
    "th": ("ถูกต้อง", "ใช่", "ดังนั้น", "ไม่"), "tr": ("doğru", "Evet", "Böylece", "Hayır"),
    "ur": ("صحیح", "جی ہاں", "اس لئے", "نہیں"), "vi": ("đúng", "Vâng", "Vì vậy", "Không"),
    "zh": ("正确", "是的", "所以", "不是的"),
}


def _xnli_task(language: str) -> Task:
    question, *labels = XNLI_WORDS[language]

    def doc_to_choice(doc: Doc) -> list[str]:
        return [doc["premise"] + f", {question}? {label}, " + doc["hypothesis"] for label in labels]

    return Task(f"xnli_{language}", "xnli", _data_dir_loader("xnli", language, ("premise", "hypothesis", "label")),
                "validation", "train", lambda doc: "", doc_to_choice, lambda doc: doc["label"],
                exclude_eval_doc=True)


# -- PAWS-X (lm_eval/tasks/paws-x) -----------------------------------------------------------------
PAWSX_WORDS = {  # language: (question word, no, yes), from the generated paws_<lang>.yaml files
    "en": ("right", "No", "Yes"), "de": ("richtig", "Nein", "Ja"), "es": ("verdad", "No", "Sí"),
    "fr": ("n'est-ce pas", "Non", "Oui"), "ja": ("ですね", "いいえ", "はい"), "ko": ("맞죠", "아니요", "예"),
    "zh": ("对吧", "不是", "是"),
}
# lm-eval 0.4.13 cleans the sentence pairs (pawsx_process_docs) for these languages only: the generated
# paws_ja/ko/zh.yaml declare no process_docs, so their documents are used as they come.
PAWSX_PROCESSED = ("en", "de", "es", "fr")


def _general_detokenize(text: str) -> str:
    text = text.replace(" n't", "n't").replace(" )", ")").replace("( ", "(").replace('" ', '"').replace(' "', '"')
    return re.sub(r" (['.,])", r"\1", text)


def pawsx_process_docs(docs: list[Doc]) -> list[Doc]:
    """paws-x/utils.py ``process_docs_paraphrases``: drop empty pairs, detokenize, trim the first
    sentence's final mark and lower-case the second's first letter."""
    out = []
    for doc in docs:
        if doc["sentence1"] in (None, "") or doc["sentence2"] in (None, ""):
            continue
        doc = dict(doc)
        doc["sentence1"] = _general_detokenize(doc["sentence1"]).strip()
        doc["sentence2"] = _general_detokenize(doc["sentence2"]).strip()
        if doc["sentence1"].endswith((".", ",", ";")):
            doc["sentence1"] = doc["sentence1"][:-1]
        doc["sentence2"] = _lower_first(doc["sentence2"])
        out.append(doc)
    return out


def _pawsx_task(language: str) -> Task:
    question, no, yes = PAWSX_WORDS[language]
    raw = _data_dir_loader("pawsx", language, ("sentence1", "sentence2", "label"))

    def doc_to_choice(doc: Doc) -> list[str]:
        return [doc["sentence1"] + f", {question}? {no}, " + doc["sentence2"],
                doc["sentence1"] + f", {question}? {yes}, " + doc["sentence2"]]

    load = (lambda split, data_dir: pawsx_process_docs(raw(split, data_dir))) if language in PAWSX_PROCESSED else raw
    return Task(f"paws_{language}", "pawsx", load, "test", "train", lambda doc: "", doc_to_choice,
                lambda doc: doc["label"], target_delimiter="")


# -- registry ----------------------------------------------------------------------------------------
def _build() -> dict[str, Callable[[], Task]]:
    factories: dict[str, Callable[[], Task]] = {}
    for language in XCOPA_CONNECTORS:
        factories[f"xcopa_{language}"] = lambda language=language: _xcopa_task(language)
    for language in XWINOGRAD_LANGUAGES:
        factories[f"xwinograd_{language}"] = lambda language=language: _xwinograd_task(language)
    for language in XSTORYCLOZE_LANGUAGES:
        factories[f"xstorycloze_{language}"] = lambda language=language: _xstorycloze_task(language)
    for language in XNLI_WORDS:
        factories[f"xnli_{language}"] = lambda language=language: _xnli_task(language)
    for language in PAWSX_WORDS:
        factories[f"paws_{language}"] = lambda language=language: _pawsx_task(language)
    return factories


TASKS = _build()
GROUPS = {
    "xcopa": [f"xcopa_{language}" for language in XCOPA_CONNECTORS],
    "xwinograd": [f"xwinograd_{language}" for language in XWINOGRAD_LANGUAGES],
    "xstorycloze": [f"xstorycloze_{language}" for language in XSTORYCLOZE_LANGUAGES],
    "xnli": [f"xnli_{language}" for language in XNLI_WORDS],
    "pawsx": ["paws_en", "paws_de", "paws_es", "paws_fr", "paws_ja", "paws_ko", "paws_zh"],
}


def resolve_tasks(names: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """(task names in order, without repeats; {group: its tasks} for the groups named)."""
    tasks: list[str] = []
    groups: dict[str, list[str]] = {}
    for name in names:
        if name in GROUPS:
            groups[name] = GROUPS[name]
            members = GROUPS[name]
        elif name in TASKS:
            members = [name]
        else:
            known = ", ".join(list(GROUPS) + list(TASKS))
            raise KeyError(f"unknown task {name!r}; known tasks and groups: {known}")
        tasks.extend(member for member in members if member not in tasks)
    return tasks, groups


def get_task(name: str) -> Task:
    return TASKS[name]()
