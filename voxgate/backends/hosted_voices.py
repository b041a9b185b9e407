"""Every voice ID the hosted Voice Agent API has ever accepted (protocol §11), with what it is known to be.

Facts about the hosted voices only: their era, the language and accent they are advertised with,
and the gender their name suggests. Which local voice speaks for each is the catalog's business
(voices.py). Nothing here is ever removed: a client written against any era keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Era = Literal["launch", "launch-removed", "september", "pre-launch"]
Gender = Literal["female", "male", "neutral"]


@dataclass(frozen=True)
class HostedVoice:
    id: str
    era: Era
    language: str  # BCP 47 of the advertised accent: "en-US", "en-GB", "fr", "es-419", "zh", ...
    gender: Gender
    description: str

    @property
    def native(self) -> bool:
        """A "native accent" voice of a language other than English."""
        return not self.language.startswith("en")


def _voices(era: Era, language: str, description: str, **genders: Gender) -> tuple[HostedVoice, ...]:
    return tuple(HostedVoice(id_, era, language, gender, f"{description} {gender}") for id_, gender in genders.items())


_F: Gender = "female"
_M: Gender = "male"

HOSTED_VOICES: tuple[HostedVoice, ...] = (
    # launch (April 2026), still listed June-August: 21
    HostedVoice("ivy", "launch", "en-US", _F, "US English female; the hosted default until August 2026"),
    *_voices(
        "launch",
        "en-US",
        "US English",
        james=_M,
        tyler=_M,
        winter=_F,
        bella=_F,
        david=_M,
        kyle=_M,
        helen=_F,
        martha=_F,
        river="neutral",
        emma=_F,
        victor=_M,
        eleanor=_F,
    ),
    HostedVoice("arjun", "launch", "hi", _M, "Hindi/Hinglish male"),
    HostedVoice("dmitri", "launch", "ru", _M, "Russian male"),
    HostedVoice("pierre", "launch", "fr", _M, "French male"),
    *_voices("launch", "it", "Italian", giulia=_F, luca=_M),
    *_voices("launch", "es", "Spanish", lucia=_F, mateo=_M),
    HostedVoice("diego", "launch", "es-419", _M, "Latin American Spanish male"),
    # launch, removed in June 2026 (the hosted API rejects them since): 13
    *_voices("launch-removed", "en-US", "US English", sam=_M, mia=_F, jack=_M),
    *_voices("launch-removed", "en-GB", "UK English", sophie=_F, oliver=_M),
    *_voices("launch-removed", "zh", "Chinese", ethan=_M, mei=_F),
    *_voices("launch-removed", "de", "German", lukas=_M, lena=_F),
    *_voices("launch-removed", "ko", "Korean", mina=_F, joon=_M),
    *_voices("launch-removed", "ja", "Japanese", ren=_M, hana=_F),
    # September 2026: 16
    *_voices("september", "en-US", "US English", alba=_F, eve=_F, george=_M, jane=_F, jean=_M, mary=_F, michael=_M),
    HostedVoice("anna", "september", "en-GB", _F, "UK English female; the hosted default from September 2026"),
    *_voices("september", "en-GB", "UK English", charles=_M, paul=_M, vera=_F),
    HostedVoice("giovanni", "september", "it", _M, "Italian male"),
    HostedVoice("lola", "september", "es", _F, "Spanish female"),
    HostedVoice("juergen", "september", "de", _M, "German male"),
    HostedVoice("rafael", "september", "pt", _M, "Portuguese male"),
    HostedVoice("estelle", "september", "fr", _F, "French female"),
    # pre-launch names (hosted: they "silently fail"; accent unknown, taken as US English): 6
    *_voices(
        "pre-launch",
        "en-US",
        "pre-launch name, taken as US English",
        autumn=_F,
        claire=_F,
        dawn=_F,
        josh=_M,
        grace=_F,
        pete=_M,
    ),
)

HOSTED_BY_ID: dict[str, HostedVoice] = {v.id: v for v in HOSTED_VOICES}
