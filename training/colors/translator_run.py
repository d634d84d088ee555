"""`neuralese train translator`: build one kind of translator for one channel into a run directory.

Layout (one directory per channel, one per translator; a bundle stands alone)::

    RUN/translators/CHANNEL/belief/                  BeliefTranslator (exact or learned p(m | c, x))
    RUN/translators/CHANNEL/direct/                  DirectTranslator (co-occurrence)
    RUN/translators/CHANNEL/seq2seq_cooccurrence/    Seq2SeqPair: to_english/ (reranked) and to_neuralese/
    RUN/translators/CHANNEL/seq2seq_belief/          the same, trained on belief-matched pairs

CHANNEL is the collection's channel kind, or a name of the user's (`continuous_learned` for our
continuous agents treated as a black box). Everything is built from the *training* pairs only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset

from training.colors.learned_speaker import LearnedSpeakerArgs, fit_message_model
from training.colors.seq2seq import Pairs, Seq2SeqTrainArgs, train_seq2seq
from training.colors.translators import BeliefBuildArgs, build_belief_translator, build_direct_translator
from translator.games.colors.record import PlayedRounds
from translator.models.channels import ChannelConfig
from translator.models.colors.agents import Agents
from translator.models.colors.english import EnglishModels
from translator.models.colors.message_model import ExactMessageModel, MessageModel
from translator.settings.checks import non_negative_int
from translator.storage.run_layout import translator_path
from translator.translate.colors import parts
from translator.translate.colors.belief import BeliefTranslator
from translator.translate.colors.collection import load_collection
from translator.translate.colors.reranked_seq2seq import RerankConfig, RerankedSeq2Seq
from translator.translate.colors.seq2seq import DIRECTION_DIRS, Seq2SeqConfig
from translator.translate.colors.seq2seq_pair import Seq2SeqPair

KINDS = ("belief", "direct", "seq2seq")
SEQ2SEQ_SOURCES = ("cooccurrence", "belief")
# the registered message models, or auto: exact when the agents bundle exists
MESSAGE_MODEL_CHOICES = ("auto", *parts.MESSAGE_MODELS.kinds())


@dataclass
class TranslatorRunArgs:
    kind: str = field(default="belief", metadata={"help": "which translator", "choices": KINDS})
    name: str | None = field(default=None, metadata={
        "help": "channel directory name (default: the corpus's channel kind)", "metavar": "CHANNEL"})
    message_model: str = field(default="auto", metadata={
        "help": "p(m | c, x) for beliefs: exact from the agents bundle, or learned from the pairs alone ('bring your own "
        "agents'); auto = exact when the corpus names an agents bundle", "choices": MESSAGE_MODEL_CHOICES})
    seed: int = field(default=0, metadata={"help": "random seed", "type": non_negative_int})
    belief: BeliefBuildArgs = field(default_factory=BeliefBuildArgs)
    seq2seq_source: str = field(default="cooccurrence", metadata={
        "help": "seq2seq training pairs: co-occurrence in the same rounds, or belief-matched (needs --kind belief first)",
        "choices": SEQ2SEQ_SOURCES, "flag": "--source"})
    seq2seq: Seq2SeqTrainArgs = field(default_factory=Seq2SeqTrainArgs)  # English → neuralese
    # Neuralese → English reads beliefs and learns from more, smaller steps (docs/decisions.md)
    seq2seq_to_english: Seq2SeqTrainArgs = field(default_factory=lambda: Seq2SeqTrainArgs(epochs=6, batch_size=32))
    rerank: RerankConfig = field(default_factory=RerankConfig)  # neuralese → English n-best reranking
    message_model_epochs: int | None = None  # learned p(m | c, x): cap on epochs (default: its own)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"translator kind {self.kind!r} is unknown; valid: {', '.join(KINDS)}")
        if self.message_model not in MESSAGE_MODEL_CHOICES:
            raise ValueError(f"message model {self.message_model!r} is not auto, exact or learned")
        if self.seq2seq_source not in SEQ2SEQ_SOURCES:
            raise ValueError(f"seq2seq source {self.seq2seq_source!r} is unknown; valid: {', '.join(SEQ2SEQ_SOURCES)}")


def channel_of(pairs: Dataset, info: dict) -> ChannelConfig:
    """The collection's channel: from its agents bundle when there is one, else from its info."""
    agents = info.get("agents")
    if agents and (Path(agents) / "config.json").is_file():
        return Agents.from_pretrained(agents).channel
    channel = info.get("channel_config") or info.get("channel")
    if not isinstance(channel, dict):
        raise ValueError(f"collection info names no channel configuration ({info})")
    return ChannelConfig.from_dict(channel)


def message_model_for(pairs: Dataset, info: dict, choice: str, seed: int, epochs: int | None = None) -> MessageModel:
    """Exact `p(m | c, x)` from the agents that spoke, or one learned from the pairs alone."""
    agents = info.get("agents")
    have_agents = bool(agents) and (Path(agents) / "config.json").is_file()
    if choice == "exact" or (choice == "auto" and have_agents):
        if not have_agents:
            raise ValueError(f"an exact message model needs the agents bundle; the collection names {agents!r}")
        return ExactMessageModel(Agents.from_pretrained(agents))
    args = LearnedSpeakerArgs(seed=seed, **({"max_epochs": epochs} if epochs else {}))
    return fit_message_model(pairs, channel_of(pairs, info), args)


def belief_matched_pairs(belief: BeliefTranslator, pairs: Dataset | PlayedRounds) -> dict[str, Pairs]:
    """Training pairs re-labelled by in-context belief matching: each message beside its English
    translation, each utterance beside its neuralese translation (the seq2seq_belief data)."""
    played = PlayedRounds.of(pairs)
    readable = belief.english.tokenizer.encode(played.utterances)  # one batched call
    said = played.subset([i for i, ids in enumerate(readable) if ids])
    messages, colors, texts, games = said.messages, said.colors, said.utterances, said.game_ids
    english = belief.to_english(messages, colors).translations
    neuralese = belief.to_neuralese(texts, colors).translations
    return {"to_english": Pairs(messages, english, colors, games), "to_neuralese": Pairs(neuralese, texts, colors, games)}


def require_utterances(pairs: Dataset, info: dict, pairs_dir: str | Path) -> None:
    """Every translator learns English from what people said beside the agents' messages: a corpus
    with no utterance at all (an import without `utterance` fields) cannot give one; say so."""
    if not any(u.strip() for u in pairs["utterance"]):
        source = f" (imported from {info['source']})" if info.get("source") else ""
        raise ValueError(f"{pairs_dir}{source}: none of its {len(pairs)} rounds has an utterance; translators pair the agents' "
                         "messages with what people said in the same rounds, so give `utterance` on the rounds that have one "
                         "(docs/message_schema.md); rounds without one still train the message model")


def train_translator(pairs_dir: str | Path, english_dir: str | Path, run: str | Path, args: TranslatorRunArgs) -> Path:
    """Build `args.kind` from a collection and an English bundle; returns the bundle directory."""
    pairs, info = load_collection(pairs_dir)
    require_utterances(pairs, info, pairs_dir)
    english = EnglishModels.from_pretrained(english_dir)
    channel = channel_of(pairs, info)
    name = args.kind if args.kind != "seq2seq" else f"seq2seq_{args.seq2seq_source}"
    out = translator_path(run, args.name or channel.kind, name)
    if args.kind == "seq2seq":
        return _train_seq2seq(pairs, info, english, channel, run, out, args)
    model = message_model_for(pairs, info, args.message_model, args.seed, args.message_model_epochs)
    if args.kind == "belief":
        translator = build_belief_translator(english, model, pairs, args.belief)
    else:
        translator = build_direct_translator(english, model, pairs, seed=args.seed)
    translator.training = {**translator.training, "pairs_dir": str(pairs_dir), "english_dir": str(english_dir)}
    translator.save_pretrained(out)
    return out


def _train_seq2seq(pairs: Dataset, info: dict, english: EnglishModels, channel: ChannelConfig, run, out: Path,
                   args: TranslatorRunArgs) -> Path:
    if args.seq2seq_source == "belief":
        belief_path = translator_path(run, args.name or channel.kind, "belief")
        if not (belief_path / "config.json").is_file():
            raise ValueError(f"seq2seq on belief-matched pairs needs {belief_path}: build it first with --kind belief")
        belief = BeliefTranslator.from_pretrained(belief_path)
        data, model_for_beliefs = belief_matched_pairs(belief, pairs), belief.message_model
    else:
        both = Pairs.from_collection(pairs)
        data = {"to_english": both, "to_neuralese": both}
        model_for_beliefs = message_model_for(pairs, info, args.message_model, args.seed, args.message_model_epochs)
    models = {}
    for direction in DIRECTION_DIRS:
        # one model for both settings: the colours of a quarter of the rounds are hidden in training;
        # to English, in context, the encoder also reads the message's belief over the colours
        beliefs = direction == "to_english"
        config = Seq2SeqConfig(direction=direction, channel=channel, use_context=True, context_dropout=0.25, belief_input=beliefs)
        train_args = args.seq2seq_to_english if direction == "to_english" else args.seq2seq
        model = train_seq2seq(data[direction], config, tokenizer=english.tokenizer, args=train_args,
                              message_model=model_for_beliefs if beliefs else None)
        model.training_info["source"] = args.seq2seq_source
        # neuralese → English: beam hypotheses reranked by the English listener
        models[direction] = RerankedSeq2Seq(model, english, args.rerank) if beliefs else model
    Seq2SeqPair(models["to_english"], models["to_neuralese"], args.seq2seq_source).save_pretrained(out)
    return out
