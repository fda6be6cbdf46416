"""Small real climate fields shipped with the ``eofs`` package, checksum-pinned.

``example_path(name)`` returns the path of one of the example NetCDF files of ``eofs``
(``eofs/examples/example_data``) after checking its sha256 against the pin below, so a test or
an example that uses it reads exactly the data it was written for (``python -m
mncrl.climate_data NAME`` prints the path):

- ``sst_ndjfm_anom``: NDJFM-mean sea-surface temperature anomalies of the Pacific, 1963-2012
  (50 winters x 18 latitudes x 30 longitudes, land cells missing);
- ``hgt_djf``: DJF-mean 500 hPa geopotential height north of 20N, 1948-2012 (65 winters x
  1 pressure level x 29 latitudes x 49 longitudes).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from mncrl.errors import MncrlError

SHA256 = {
    "sst_ndjfm_anom": "7b85c04e272d020d72d35c3eb9c720e03cb030920a779947de810e5d1dc7252c",
    "hgt_djf": "2023b8194390343ebeb7d534a6e675ba56e9c8f013cc07a3fb0abadce48efee2",
}


def sha256(path: str | Path) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def example_path(name: str) -> Path:
    """The path of the ``eofs`` example field ``name`` (see the module docstring); MncrlError
    for an unknown name, without ``eofs``, or when the file's sha256 is not the pinned one."""
    if name not in SHA256:
        raise MncrlError(f"unknown example field {name!r}; known: {', '.join(sorted(SHA256))}")
    try:
        import eofs
    except ImportError:
        raise MncrlError(
            "the example fields come with the eofs package: pip install eofs"
        ) from None
    path = Path(eofs.__file__).parent / "examples" / "example_data" / f"{name}.nc"
    if not path.is_file():
        raise MncrlError(f"example field {name!r} not found at {path}")
    digest = sha256(path)
    if digest != SHA256[name]:
        raise MncrlError(
            f"example field {path} has sha256 {digest}, expected {SHA256[name]}: "
            "not the file this package was written for"
        )
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m mncrl.climate_data NAME``: print the checked path of an example field."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(
            f"usage: python -m mncrl.climate_data {{{','.join(sorted(SHA256))}}}", file=sys.stderr
        )
        return 2
    try:
        print(example_path(args[0]))
    except MncrlError as exc:
        print(f"mncrl.climate_data: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["SHA256", "example_path", "main", "sha256"]
