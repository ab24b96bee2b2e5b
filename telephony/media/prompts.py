"""The default prompt set: every prompt the engine's media features play, by name, with its
words in each language it ships in (English always). ``manage.py make_prompts`` speaks them
(espeak-ng) into ``<media dir>/prompts/<language>/<name>.wav``; a tenant's own recording of
the same name replaces one for its calls. Pure: the engine imports the names.
"""

from __future__ import annotations

import os

__all__ = ["DIGIT_PROMPTS", "PROMPTS", "default_path", "digit_files"]

# name -> language -> words.
PROMPTS: dict[str, dict[str, str]] = {
    "welcome": {"en": "Welcome. Please enter the extension number, or hold for the operator."},
    "invalid": {"en": "That is not a valid choice."},
    "goodbye": {"en": "Goodbye."},
    "closed": {"en": "We are closed now. Please call again during our office hours."},
    "unavailable": {"en": "The person you are calling is not available."},
    "busy": {"en": "The person you are calling is on the phone."},
    "leave-message": {"en": "Please leave a message after the tone. Press hash when you are done."},
    "no-mailbox": {"en": "This mailbox is not available."},
    "mailbox-number": {"en": "Please enter your mailbox number, followed by hash."},
    "enter-pin": {"en": "Please enter your PIN, followed by hash."},
    "wrong-pin": {"en": "That PIN is not correct."},
    "you-have": {"en": "You have"},
    "new-messages": {"en": "new messages"},
    "saved-messages": {"en": "saved messages"},
    "no-messages": {"en": "You have no messages."},
    "main-menu": {
        "en": "To listen to your new messages, press 1. For saved messages, press 2. "
        "To record your greetings, press 0. To hang up, press star."
    },
    "message-menu": {
        "en": "To play the message again, press 1. To save it, press 2. "
        "To delete it, press 7. For the next message, press 9. For the main menu, press star."
    },
    "message": {"en": "Message"},
    "from": {"en": "from"},
    "saved": {"en": "Message saved."},
    "deleted": {"en": "Message deleted."},
    "no-more-messages": {"en": "There are no more messages."},
    "greeting-menu": {
        "en": "To record your unavailable greeting, press 1. To record your busy greeting, "
        "press 2. For the main menu, press star."
    },
    "record-greeting": {"en": "Record your greeting after the tone. Press hash when you are done."},
    "greeting-saved": {"en": "Your greeting has been saved."},
    "dnd-on": {"en": "Do not disturb is on."},
    "dnd-off": {"en": "Do not disturb is off."},
    "forward-on": {"en": "Call forwarding is on."},
    "forward-off": {"en": "Call forwarding is off."},
    "voicemail-on": {"en": "Calls go to your voicemail."},
    "voicemail-off": {"en": "Calls no longer go to your voicemail."},
    "feature-failed": {"en": "That feature is not available."},
    "enter-number": {"en": "Please enter the number you want to call, followed by hash."},
    "please-hold": {"en": "Please hold while we connect your call."},
}
DIGIT_WORDS = {
    "en": ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
}
# "digit-0" .. "digit-9": numbers are said digit by digit.
DIGIT_PROMPTS = {f"digit-{d}": {"en": DIGIT_WORDS["en"][d]} for d in range(10)}
PROMPTS.update(DIGIT_PROMPTS)


def default_path(media_dir: str, language: str, name: str) -> str:
    """Where the default prompt ``name`` of ``language`` is (it may not exist: a language the
    set has no words for falls back to English, which the caller decides)."""
    return os.path.join(media_dir, "prompts", language, f"{name}.wav")


def digit_files(media_dir: str, language: str, number: str) -> list[str]:
    """The files that say ``number`` digit by digit (other characters are skipped)."""
    return [default_path(media_dir, language, f"digit-{d}") for d in number if d.isdigit()]
