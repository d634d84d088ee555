"""The message-blind baseline: a "translator" that never reads what it translates.

In context, a translator can score well by recovering the agent's target from the message and
then describing that colour, which needs no grasp of what the message says. This baseline does
only the describing, from the round's true target: neuralese → English says the candidate
utterance the consulted English listener `H_l` is surest picks the target in the round's context;
English → neuralese sends the message the agent speaker most likely sends for the target there.
Where knowing the target is useless (transplanted contexts, `eval.colors.transplant`) it sits at chance,
and a real translator must beat it.
"""

from __future__ import annotations

import torch

from translator.models.colors.english import EnglishModels
from translator.models.colors.message_model import MessageModel, most_likely_messages
from translator.models.colors.prerank import BilinearRanker
from translator.translate.translations import Translations


class MessageBlind:
    """Describe each round's target, or send the agent's own message for it, given the context.

    `candidates`: the English utterances it may say (the belief translator's); `message_model`:
    the agents' speaker as the translators know it (exact or learned). With a `ranker` (the
    belief translator's bilinear stand-in for the listener), the listener scores only each row's
    `shortlist` candidates the ranker likes best, as the in-context belief translator does;
    without one, every candidate.
    """

    def __init__(self, english: EnglishModels, candidates: list[str], message_model: MessageModel,
                 ranker: BilinearRanker | None = None, shortlist: int = 16, batch_size: int = 256):
        self.english, self.candidates, self.message_model = english, list(candidates), message_model
        self.ranker, self.shortlist, self.batch_size = ranker, shortlist, batch_size
        with torch.no_grad():
            self._parts = english.listener.utterance_parts(english.encode_utterances(self.candidates))  # read once

    @torch.no_grad()
    def _surest(self, targets: torch.Tensor, colors: torch.Tensor) -> torch.Tensor:
        """Index of the candidate with the highest `H_l(target | u, c)` in each row, `(B,)`."""
        g = self.english.encode_colors(colors)  # (B, 3, C)
        n, u = len(targets), len(self.candidates)
        if self.ranker is None or self.shortlist >= u:
            top = torch.arange(u).expand(n, u)
        else:
            rough = self.ranker.log_beliefs(g)[torch.arange(n), targets]  # (B, U)
            top = rough.topk(self.shortlist, dim=1).indices
        a, p = self._parts
        sure = self.english.listen_parts((a[top], p[top]), g)[torch.arange(n), :, targets]  # (B, S)
        return top.gather(1, sure.argmax(1, keepdim=True)).squeeze(1)

    def surest(self, targets: torch.Tensor, colors: torch.Tensor) -> torch.Tensor:
        """Index of the candidate the consulted listener is surest picks `targets[n]` in `colors[n]`."""
        targets, colors = torch.as_tensor(targets, dtype=torch.long), torch.as_tensor(colors, dtype=torch.float32)
        parts = [self._surest(targets[s : s + self.batch_size], colors[s : s + self.batch_size])
                 for s in range(0, len(targets), self.batch_size)]  # fmt: skip
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)

    def to_english(self, targets: torch.Tensor, colors: torch.Tensor) -> Translations:
        """The candidate the consulted listener is surest picks `targets[n]` in `colors[n]`."""
        best = self.surest(targets, colors).tolist()
        return Translations.plain([self.candidates[i] for i in best])

    @torch.no_grad()
    def to_neuralese(self, targets: torch.Tensor, colors: torch.Tensor) -> Translations:
        """The agent speaker's most likely message for `targets[n]` in `colors[n]`."""
        targets = torch.as_tensor(targets, dtype=torch.long)
        own = most_likely_messages(self.message_model, colors)  # (N, 3, ...)
        return Translations.plain(own[torch.arange(len(targets)), targets])
