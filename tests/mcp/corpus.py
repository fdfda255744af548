"""Two small collections the MCP tests search: what one key may see and another not."""

from __future__ import annotations

LIGHTHOUSE = """# Lighthouse of Alexandria

The Lighthouse of Alexandria was built by the Ptolemaic Kingdom during the reign of
Ptolemy II Philadelphus, between 280 and 247 BC. It stood about 100 metres tall.

## Destruction

Earthquakes between 956 and 1323 AD badly damaged the lighthouse, and it became an
abandoned ruin.
"""

COLOSSUS = """# Colossus of Rhodes

The Colossus of Rhodes was a statue of the sun god Helios, erected in 280 BC on the
Greek island of Rhodes. An earthquake in 226 BC snapped it at the knees.
"""

ESPRESSO = """# Espresso

Espresso is brewed by forcing nearly boiling water through finely ground coffee beans
at about nine bars of pressure. A shot takes twenty-five to thirty seconds.
"""

# collection name -> {file name: text}
CORPUS: dict[str, dict[str, str]] = {
    "wonders": {"lighthouse.md": LIGHTHOUSE, "colossus.md": COLOSSUS},
    "drinks": {"espresso.md": ESPRESSO},
}
