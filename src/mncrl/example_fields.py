"""Real climate fields shipped inside installed packages (read offline, checksums pinned).

``eofs`` 2.0.0 (GPL-3; its example data are NOAA fields) ships two small NetCDF files that
this project reads and never redistributes:

- ``sst_ndjfm_anom``: Pacific sea-surface-temperature anomalies (K), November-March means of
  the 50 winters 1962/63-2011/12 on a 5-degree grid (18 latitudes x 30 longitudes, 22.5S-62.5N,
  117.5E-97.5W), land cells missing;
- ``hgt_djf``: 500 hPa geopotential height (m), December-February means of the 65 winters
  1948-2012 on a 2.5-degree grid over the North Atlantic sector (20N-90N, 80W-40E).

:func:`example_path` finds a file and checks its SHA-256 against :data:`CHECKSUMS`, so a
changed package version cannot silently change a result.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from mncrl.errors import MncrlError

CHECKSUMS = {
    "sst_ndjfm_anom": "7b85c04e272d020d72d35c3eb9c720e03cb030920a779947de810e5d1dc7252c",
    "hgt_djf": "2023b8194390343ebeb7d534a6e675ba56e9c8f013cc07a3fb0abadce48efee2",
}
VARIABLES = {"sst_ndjfm_anom": "sst", "hgt_djf": "z"}


def example_path(name: str) -> Path:
    """The path of example field ``name`` inside the installed ``eofs``, checksum verified."""
    if name not in CHECKSUMS:
        raise MncrlError(f"unknown example field '{name}'; choose from: {', '.join(CHECKSUMS)}")
    try:
        import eofs
    except ImportError:
        raise MncrlError(
            "the example fields ship with the package eofs: pip install eofs==2.0.0"
        ) from None
    path = Path(eofs.__file__).parent / "examples" / "example_data" / f"{name}.nc"
    if not path.is_file():
        raise MncrlError(f"{path} is missing: reinstall eofs==2.0.0")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != CHECKSUMS[name]:
        raise MncrlError(
            f"{path} has SHA-256 {digest[:12]}..., expected {CHECKSUMS[name][:12]}...: "
            "not the file this project was checked against (install eofs==2.0.0)"
        )
    return path


def sst_anomalies():
    """(values T x nlat x nlon with NaN on land, years of the winters' January, latitude,
    longitude) of ``sst_ndjfm_anom``, as numpy arrays."""
    import numpy as np
    import xarray as xr

    with xr.open_dataset(example_path("sst_ndjfm_anom")) as ds:
        sst = ds["sst"].load()
    return (
        np.asarray(sst.values, dtype=np.float64),
        np.asarray(sst["time"].dt.year.values),
        np.asarray(sst["latitude"].values, dtype=np.float64),
        np.asarray(sst["longitude"].values, dtype=np.float64),
    )
