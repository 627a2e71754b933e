"""Refusals: known conditions that reach a person as one clear sentence.

A refusal is raised *before* anything is recorded, so a refused request changes nothing.
"""


import logging
import uuid


class Refusal(Exception):
    """A request we decline, with the sentence the person should read."""

    def __init__(self, sentence: str):
        super().__init__(sentence)
        self.sentence = sentence


class InvalidAmount(Refusal):
    """The amount typed is not a usable sum of money."""


class OverAllowance(Refusal):
    """The amount is more than this person may give on this case right now."""


class NotYourCase(Refusal):
    """Someone other than the owner tried to act on a case."""


class StepNotOpen(Refusal):
    """The step is already done, not reached yet, or the case is closed."""


class CaseNotFound(Refusal):
    """No case with that id in this workspace."""


class BadCommand(Refusal):
    """The command text could not be understood."""


class UnknownRole(Refusal):
    """An admin named a role that does not exist."""


class NotAdmin(Refusal):
    """An admin command from someone who is not an admin."""


class StoreUnavailable(Refusal):
    """The store could not read or write; nothing was recorded."""

    def __init__(self, sentence: str = "Amends couldn't save that, so nothing was recorded. Try again in a minute."):
        super().__init__(sentence)


def sentence_for(error: Exception, *, log: logging.Logger) -> str:
    """What to tell the person: a refusal's own sentence; for anything else, a reference that the
    log line (with the traceback) carries too, so support can find it. Never a stack trace."""
    if isinstance(error, Refusal):
        return error.sentence
    reference = uuid.uuid4().hex[:8]
    log.error("unhandled error, reference %s", reference, exc_info=error)
    return (f"Something went wrong on our side (reference {reference}). What was already saved is safe; "
            "try again, and if it keeps happening give your admin that reference.")
