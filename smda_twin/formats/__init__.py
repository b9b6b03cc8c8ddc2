"""Writers of the providers' real file formats, for the offline twin's replicas.

Pure functions: arrays and metadata in, one file out, written atomically (a temporary file beside
the target, then ``os.replace``) and deterministically (same inputs, same bytes). Each module
documents the real file it copies (``../shared/data/real/``, STRUCTURE.md) or, where none exists,
the choices it made.

- :mod:`.era5` — new-CDS ERA5 / ERA5-Land netCDF, and the instant/accum ZIP.
- :mod:`.smap` — SMAP L3 ``SPL3SMP`` V009 and ``SPL3SMP_E`` V006 HDF5 granules.
- :mod:`.gldas` — ``GLDAS_NOAH025_3H`` v2.1 netCDF4 granules.
- :mod:`.mswep` — MSWEP V2.8 daily ``YYYYDDD.nc``.
- :mod:`.ismn` — ISMN header+values station files and download ZIPs.
"""

from smda_twin.formats.era5 import REQUEST_NAMES, STEP_TYPE, write_era5_netcdf, write_era5_response
from smda_twin.formats.gldas import gldas_filename, write_gldas_noah025_3h
from smda_twin.formats.ismn import (
    IsmnStation,
    StaticVariables,
    write_ismn_archive,
    write_ismn_station,
)
from smda_twin.formats.mswep import mswep_filename, write_mswep_daily
from smda_twin.formats.smap import (
    spl3smp_e_filename,
    spl3smp_filename,
    write_spl3smp,
    write_spl3smp_e,
)

__all__ = [
    "REQUEST_NAMES",
    "STEP_TYPE",
    "IsmnStation",
    "StaticVariables",
    "gldas_filename",
    "mswep_filename",
    "spl3smp_e_filename",
    "spl3smp_filename",
    "write_era5_netcdf",
    "write_era5_response",
    "write_gldas_noah025_3h",
    "write_ismn_archive",
    "write_ismn_station",
    "write_mswep_daily",
    "write_spl3smp",
    "write_spl3smp_e",
]
