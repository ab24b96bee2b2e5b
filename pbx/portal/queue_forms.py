"""Portal forms of the contact centre: a call queue (every setting, in fieldsets; its agents
in hunt order, a row each, like a ring group's members; its supervisors as tick boxes), an
extension's agent skills, and the end user's state in their queues. They only shape input;
every rule is ``callcenter.actions``', whose field errors these forms put back on the boxes
they belong to."""

from __future__ import annotations

import re

from django import forms

from callcenter.choices import AgentState, QueueStrategy
from routing.destinations import KINDS
from tenants.choices import RecordingPolicy

from .forms import Section, SectionedForm
from .team_forms import TARGET_HELP, add_row_errors
from .widgets import DatalistInput

#: Empty agent rows a page offers below the queue's agents.
SPARE_ROWS = 5
#: The most agent rows one page shows (save to get more).
MAX_ROWS = 200
#: Not-ready reasons the web app offers (any text is allowed too).
READY_REASONS = ("Break", "Lunch", "Meeting", "Training", "After-call work")


def _lines(value: str) -> list[str]:
    """A textarea's entries, one per line (blank lines and spaces dropped)."""
    return [line.strip() for line in (value or "").splitlines() if line.strip()]


def _levels_text(levels: dict) -> str:
    return "\n".join(f"{name}={level}" for name, level in sorted((levels or {}).items()))


def _parse_levels(value: str) -> dict[str, int]:
    """``skill=level`` lines as a dict; a malformed line is a form error (the level's range
    and the skill's name are the action's rules)."""
    out: dict[str, int] = {}
    for line in _lines(value):
        name, sep, level = (part.strip() for part in line.partition("="))
        if not sep or not name or not re.fullmatch(r"-?\d{1,3}", level):
            raise forms.ValidationError(f'"{line}" is not skill=level (such as french=5).')
        out[name] = int(level)
    return out


def _seconds(label: str, initial: int, help_text: str = "") -> forms.IntegerField:
    return forms.IntegerField(label=label, initial=initial, min_value=0, help_text=help_text)


def _flag(label: str, initial: bool = False, help_text: str = "") -> forms.BooleanField:
    return forms.BooleanField(required=False, initial=initial, label=label, help_text=help_text)


def _numbers_box(label: str, help_text: str) -> forms.CharField:
    return forms.CharField(
        required=False,
        label=label,
        help_text=help_text,
        widget=forms.Textarea({"rows": 4}),
    )


class QueueForm(SectionedForm):
    number = forms.CharField(
        label="Number", help_text="Dialled like an extension; inbound rules and menus name it."
    )
    name = forms.CharField(label="Name")
    enabled = _flag("Enabled", True, "A disabled queue sends its callers to the overflow.")
    # distribution
    strategy = forms.ChoiceField(choices=QueueStrategy.choices, label="Distribution")
    ring_seconds = _seconds("Seconds an agent rings", 20, "Then the next agent is offered it.")
    wrap_up_seconds = _seconds(
        "Wrap-up seconds", 10, "After a queue call, before the agent is offered the next one."
    )
    required_skills = forms.CharField(
        required=False,
        label="Required skills",
        help_text="For skills-based distribution: skill=level (1 to 10), one per line.",
        widget=forms.Textarea({"rows": 3}),
    )
    sticky = _flag(
        "Last agent first", help_text="A caller is offered first to the agent who last took it."
    )
    auto_ready = _flag(
        "Agents are ready unless they say otherwise",
        True,
        "Off: an agent takes calls only after logging in (feature code, app or API).",
    )
    # waiting experience
    music_class = forms.TypedChoiceField(
        coerce=int, required=False, empty_value=None, label="Music on hold"
    )
    greeting = forms.TypedChoiceField(
        coerce=int, required=False, empty_value=None, label="Greeting"
    )
    announce_position = _flag("Announce the caller's position", True)
    announce_wait = _flag("Announce the estimated wait", True)
    announce_seconds = _seconds("Announce every (seconds)", 30, "0: never.")
    caller_id_prefix = forms.CharField(
        required=False,
        label="Caller name prefix",
        help_text="Shown before the caller's name on the agents' phones (\"Support:\").",
    )
    recording = forms.ChoiceField(
        required=False, choices=RecordingPolicy.choices, label="Record the queue's calls"
    )
    # limits and overflow
    max_wait_seconds = _seconds("Longest wait (seconds)", 600, "0: no limit.")
    max_callers = _seconds("Callers waiting at most", 0, "0: no limit.")
    wait_without_agents = _flag(
        "Callers wait when no agent is logged in", help_text="Off: they go to the overflow."
    )
    overflow_kind = forms.ChoiceField(required=False, label="Overflow: send to")
    overflow_target = forms.CharField(
        required=False, label="Overflow target", help_text=TARGET_HELP, widget=DatalistInput()
    )
    # callback
    callback = _flag(
        "Offer a callback",
        help_text="A waiting caller may press 3, hang up and keep its place; it is called back.",
    )
    callback_prefix = forms.CharField(
        required=False,
        label="Callback dial prefix",
        help_text="Dialled before the caller's number, to match an outbound rule.",
    )
    # VIP and blacklist
    vip = _numbers_box("VIP callers", "Numbers or dial patterns, one per line: they go first.")
    blacklist = _numbers_box(
        "Blocked callers", "Numbers or dial patterns, one per line: they are refused."
    )
    # SLA
    sla_seconds = _seconds("Answer within (seconds)", 20)
    sla_percent = forms.IntegerField(
        label="Service level target (%)",
        initial=80,
        min_value=0,
        max_value=100,
        help_text="The wallboard alerts when fewer calls are answered in time.",
    )
    supervisors = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Supervisors",
        help_text="They see the wallboard and may listen, whisper or barge in on calls.",
    )

    sections: tuple[Section, ...] = (
        Section("Queue", ("number", "name", "enabled")),
        Section(
            "Distribution",
            (
                "strategy",
                "ring_seconds",
                "wrap_up_seconds",
                "required_skills",
                "sticky",
                "auto_ready",
            ),
        ),  # fmt: skip
        Section(
            "Waiting experience",
            (
                "music_class",
                "greeting",
                "announce_position",
                "announce_wait",
                "announce_seconds",
                "caller_id_prefix",
                "recording",
            ),
        ),  # fmt: skip
        Section(
            "Limits and overflow",
            (
                "max_wait_seconds",
                "max_callers",
                "wait_without_agents",
                "overflow_kind",
                "overflow_target",
            ),
            "A caller who waited too long, found the queue full or no agent goes here.",
        ),  # fmt: skip
        Section("Callback", ("callback", "callback_prefix")),
        Section("VIP and blocked callers", ("vip", "blacklist")),
        Section(
            "Service level",
            ("sla_seconds", "sla_percent"),
            "A call answered later than this, or still waiting, breaks the service level.",
        ),
        Section("Supervisors", ("supervisors",)),
    )
    plain = ("number", "name", "enabled", "strategy", "ring_seconds", "wrap_up_seconds",
             "sticky", "auto_ready", "music_class", "greeting", "announce_position",
             "announce_wait", "announce_seconds", "caller_id_prefix", "recording",
             "max_wait_seconds", "max_callers", "wait_without_agents", "callback",
             "callback_prefix", "sla_seconds", "sla_percent")  # fmt: skip

    def __init__(self, *args, targets=(), extensions=(), agents=(), music=(), prompts=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["overflow_kind"].choices = [("", "Nobody: a goodbye, then hang up")] + [
            (k.kind, k.label) for k in KINDS.values()
        ]
        self.fields["overflow_target"].widget.options = targets
        self.fields["music_class"].choices = [("", "The company's default")] + list(music)
        self.fields["greeting"].choices = [("", "None")] + list(prompts)
        self.fields["supervisors"].choices = list(extensions)
        if self.is_bound:
            rows = sum(1 for key in self.data if re.fullmatch(r"agent_\d+", str(key)))
        else:
            rows = len(agents) + SPARE_ROWS
        self.agent_rows: list[str] = []
        for i in range(min(max(rows, SPARE_ROWS), MAX_ROWS)):
            name = f"agent_{i}"
            self.fields[name] = forms.CharField(
                required=False,
                label=f"Agent {i + 1}",
                widget=DatalistInput(shared_list="agent-extensions"),
            )
            if i < len(agents):
                self.initial[name] = agents[i]
            self.agent_rows.append(name)
        self.extension_options = list(extensions)

    def clean_required_skills(self):
        return _parse_levels(self.cleaned_data.get("required_skills", ""))

    def grouped(self):
        """The sections; the agents have a table of their own (:meth:`agents`)."""
        return [(section, bound) for section, bound in super().grouped() if section is not None]

    def agents(self) -> list[dict]:
        return [{"position": i + 1, "field": self[n]} for i, n in enumerate(self.agent_rows)]

    def fields_for_action(self) -> dict:
        data = {n: self.cleaned_data[n] for n in self.plain}
        data["number"] = data["number"].strip()
        data["required_skills"] = self.cleaned_data["required_skills"]
        data["vip"] = _lines(self.cleaned_data["vip"])
        data["blacklist"] = _lines(self.cleaned_data["blacklist"])
        kind = self.cleaned_data.get("overflow_kind") or ""
        target = (self.cleaned_data.get("overflow_target") or "").strip()
        data["overflow"] = {"kind": kind, "target": target} if kind else None
        data["agents"] = [
            number
            for box in self.agent_rows
            if (number := (self.cleaned_data.get(box) or "").strip())
        ]
        data["supervisors"] = list(self.cleaned_data["supervisors"])
        return data

    def add_action_errors(self, exc) -> None:
        """An agent's error goes on the row of the agent it names; the overflow's on its
        target."""
        add_row_errors(self, exc, self.agent_rows, "agents")


def queue_initial(queue) -> dict:
    """A queue's form values."""
    initial = {
        n: getattr(queue, n) for n in QueueForm.plain if n not in ("music_class", "greeting")
    }
    initial["music_class"] = queue.music_class_id
    initial["greeting"] = queue.greeting_id
    initial["required_skills"] = _levels_text(queue.required_skills)
    initial["vip"] = "\n".join(queue.vip or [])
    initial["blacklist"] = "\n".join(queue.blacklist or [])
    overflow = queue.overflow or {}
    initial["overflow_kind"] = overflow.get("kind", "")
    initial["overflow_target"] = overflow.get("target", "")
    initial["supervisors"] = [e.number for e in queue.supervisors.all()]
    return initial


class AgentSkillsForm(forms.Form):
    skills = forms.CharField(
        required=False,
        label="Skills",
        help_text="skill=level (1 to 10), one per line, such as french=7. Empty: no skills.",
        widget=forms.Textarea({"rows": 6}),
    )

    def clean_skills(self):
        return _parse_levels(self.cleaned_data.get("skills", ""))


def skills_text(extension) -> str:
    return _levels_text({s.skill: s.level for s in extension.skills.all()})


class AgentStateForm(forms.Form):
    """The end user's state in one of their queues or all of them (``queue`` empty)."""

    state = forms.ChoiceField(
        choices=[(s, label) for s, label in AgentState.choices if s != AgentState.WRAP_UP]
    )
    queue = forms.CharField(required=False)
    reason = forms.CharField(required=False, max_length=40, label="Reason")
