"""The offline prompt source: prompt specs drawn from the role packs in data/, no network."""

from __future__ import annotations

import random
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from imagebot.providers.base import PromptRequest, PromptSpec
from imagebot.providers.prompt_text import (
    RISKY_RE,
    SOFTER,
    describe,
    scene_seam,
    seam,
)
from imagebot.providers.roles import (
    DATA_DIR,
    Role,
    compose_prompt,
    get_role,
    load_roles,
    pick,
)
from imagebot.providers.template_titles import (
    article_for,
    as_tag,
    author_clause,
    fitting_mood,
    make_tags,
    make_title,
    subject_core,
    tidy,
)

_SAFE_NEGATIVE = "gore, blood, violence, weapons, nudity"
_SAFE_ADDITION = "family-friendly, peaceful"


class TemplateSource:
    """Prompt specs from data/ role packs and wildcards: offline, seeded, fast."""

    source_id: ClassVar[str] = "templates"

    def __init__(self, data_dir: Path = DATA_DIR, seed: int | None = None) -> None:
        self._data_dir = Path(data_dir)
        self._rng = random.Random(seed)
        load_roles(self._data_dir)  # a broken role file is reported at start, not mid-batch

    @classmethod
    def from_options(cls, options: Any) -> TemplateSource:
        """The templates source reads the role packs shipped in data/."""
        return cls()

    @property
    def model(self) -> str | None:
        return None

    async def generate(self, request: PromptRequest) -> list[PromptSpec]:
        """`request.count` specs; the same seed, role and theme give the same specs."""
        fixed = get_role(request.role, self._data_dir) if request.role else None
        batch_seed = request.seed if request.seed is not None else self._rng.getrandbits(32)
        roles = sorted(load_roles(self._data_dir).values(), key=lambda r: r.id)
        random.Random(batch_seed).shuffle(roles)  # a deck: a batch walks through varied roles
        specs: list[PromptSpec] = []
        titles: set[str] = set()
        for index in range(max(0, request.count)):
            # Spec 0 uses the batch seed itself, so count=1 with a recorded seed re-rolls it.
            seed = (batch_seed + index * 0x9E3779B1) % 2**32
            role = fixed or roles[index % len(roles)]
            spec = self.make_spec(role, seed, request.theme, batch_seed=batch_seed, avoid=titles)
            titles.add(spec.title)
            specs.append(spec)
        return specs

    def make_spec(
        self,
        role: Role,
        seed: int,
        theme: str | None = None,
        batch_seed: int | None = None,
        avoid: set[str] | None = None,
    ) -> PromptSpec:
        """One spec of `role` from `seed`, with the picks that made it; titles not in `avoid`."""
        theme = (theme or "").strip() or None
        rng = random.Random(seed)
        # Draws that read as machine-made (two times of day, a phrase said twice, "at in") are
        # drawn again; the seed still fixes which draw wins, so specs stay reproducible.
        for _attempt in range(12):
            picks = pick(role, rng, theme, self._data_dir)
            scene = tidy(picks["scene"])
            if scene_seam(scene) and _attempt < 11:
                continue
            style, elements = picks["style"], picks["elements"]
            render_type = picks["render_type"]
            author = author_clause(picks["author"])
            look_mood = str(role.look.get("mood", ""))
            mood = fitting_mood(rng, self._data_dir, f"{scene} {style} {look_mood}")
            description = tidy(describe(rng, scene, style, elements, mood, author, render_type))
            if not seam(description):
                break

        core = subject_core(scene, theme)
        # Titles draw from their own stream so re-titling a batch duplicate changes nothing else.
        # A title must not just echo the opening words of the description.
        for attempt in range(16):
            title_rng = random.Random(seed * 31 + attempt)
            title = make_title(title_rng, core, f"{scene} {style}", mood, article_for(core, scene))
            echo = description.lower().startswith(title.lower())
            if not echo and title not in (avoid or ()):
                break
        parts = [core, theme or "", render_type, style, *elements, mood]
        tags = make_tags(rng, role, parts, rng.randint(7, 10))
        prompt = compose_prompt(role, description, tags, style, render_type)
        return PromptSpec(
            title=title,
            description=description,
            metatags=tags,
            prompt=prompt,
            negative_prompt=role.negative_prompt,
            role=role.id,
            theme=theme,
            prompt_source=self.source_id,
            prompt_model=None,
            picks={"role": role.id, "seed": seed, "batch_seed": batch_seed, **picks, "mood": mood},
            settings=dict(role.settings),
        )

    async def soften(self, spec: PromptSpec, reason: str) -> PromptSpec:
        """The same spec with risky words swapped for tame ones and a gentler prompt."""

        def calm(text: str) -> str:
            def swap(match: re.Match[str]) -> str:
                word = SOFTER[match.group(0).lower()]
                return word.capitalize() if word and match.group(0)[0].isupper() else word

            text = RISKY_RE.sub(swap, text)
            text = re.sub(r"\s+([,.;])", r"\1", re.sub(r"[ \t]{2,}", " ", text))
            return re.sub(r"(,\s*){2,}", ", ", text).strip(" ,")

        tags = []
        for tag in (as_tag(calm(t)) for t in spec.metatags):
            if tag and tag not in tags:
                tags.append(tag)
        role = get_role(spec.role, self._data_dir) if spec.role else None
        if len(tags) < 5 and role:
            tags += [t for t in role.tags if t not in tags][: 5 - len(tags)]
        prompt = calm(spec.prompt)
        if _SAFE_ADDITION not in prompt:
            prompt = f"{prompt}, {_SAFE_ADDITION}"
        terms = [t.strip() for t in spec.negative_prompt.split(",") if t.strip()]
        terms += [t for t in _SAFE_NEGATIVE.split(", ") if t not in terms]
        negative = ", ".join(terms)
        return replace(
            spec,
            title=calm(spec.title) or spec.title,
            description=calm(spec.description),
            metatags=tags[:12],
            prompt=prompt,
            negative_prompt=negative,
            picks={**spec.picks, "softened": reason},
        )

    async def aclose(self) -> None:
        """Nothing to release: no network, no files held open."""
