"""The ``Metadata`` group of the twin's SMAP L3 granules: the subgroups and attributes of the real
granule (ISO 19115-like, as in ../shared/data/real/smap), filled for the granule's day."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, timedelta
from typing import TYPE_CHECKING

import h5py
import numpy as np

if TYPE_CHECKING:
    from smda_twin.formats.smap import Attr, _Product

__all__ = ["metadata_tree", "write_metadata"]


def _acquisition() -> dict[str, dict[str, Attr]]:
    """``Metadata/AcquisitionInformation``: the platform and its instruments."""
    handbook: dict[str, Attr] = {
        "edition": "JPL CL#14-2285, JPL 400-1567",
        "publicationDate": "2014-07-01",
        "title": "SMAP Handbook",
    }
    return {
        "AcquisitionInformation": {},
        "AcquisitionInformation/platform": {
            "antennaRotationRate": np.float32(14.6),
            "description": "The SMAP observatory houses an L-band radiometer that operates at 1.414 GHz and an L-band "
            "radar that operates at 1.225 GHz.",
            "identifier": "SMAP",
        },
        "AcquisitionInformation/platformDocument": handbook,
        "AcquisitionInformation/radar": {
            "description": "The SMAP 1.225 GHz L-Band Radar Instrument",
            "identifier": "SMAP SAR",
            "type": "L-Band Synthetic Aperture Radar",
        },
        "AcquisitionInformation/radarDocument": handbook,
        "AcquisitionInformation/radiometer": {
            "description": "The SMAP 1.414 GHz L-Band Radiometer",
            "identifier": "SMAP RAD",
            "type": "L-Band Radiometer",
        },
        "AcquisitionInformation/radiometerDocument": handbook,
    }


def _quality(stats: Mapping[str, float]) -> dict[str, dict[str, Attr]]:
    """``Metadata/DataQuality``: the granule's missing and out-of-range percentages."""
    return {
        "DataQuality": {"scope": "soil_moisture"},
        "DataQuality/CompletenessOmission": {
            "evaluationMethodType": "directInternal",
            "measureDescription": "Percentage of EASE2 grid cells that lack soil moisture retrieval values relative to "
            "the total number of grid cells where soil moisture retrieval was attempted.",
            "nameOfMeasure": "Percent of Missing Data",
            "unitOfMeasure": "percent",
            "value": np.float32(stats["missing_percent"]),
        },
        "DataQuality/DomainConsistency": {
            "evaluationMethodType": "directInternal",
            "measureDescription": "Percentage of EASE2 grid cells with soil moisture measures that fall outside of a "
            "predefined acceptable range.",
            "nameOfMeasure": "Percentage of EASE2 grid cells with Retrieved Soil Moistures outside the Acceptable Range.",
            "unitOfMeasure": "percent",
            "value": np.float32(stats["out_of_range_percent"]),
        },
    }


def _identification(
    product: _Product, day: date, crid: str, file_name: str
) -> dict[str, dict[str, Attr]]:
    """The dataset's, series' and specification's identification."""
    created = (day + timedelta(days=2)).isoformat()
    abstract = (
        f"Daily global composite of up-to 30 half-orbit L2_SM_P{product.smap_short_name[7:]} soil moisture estimates based "
        "on radiometer brightness temperature measurements acquired by the SMAP radiometer during descending (AM) and "
        "ascending (PM) half-orbits at approximately 6 AM and 6 PM local solar time."
    )
    return {
        "DatasetIdentification": {
            "CompositeReleaseID": crid,
            "ECSVersionID": product.version,
            "SMAPShortName": product.smap_short_name,
            "UUID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"smap/{file_name}")),
            "abstract": abstract,
            "characterSet": "utf8",
            "creationDate": created,
            "credit": "The software that generates the Level 3 SM_P product and the data system that automates its "
            "production were designed and implemented at the Jet Propulsion Laboratory, California Institute of "
            "Technology in Pasadena, California.",
            "fileName": file_name,
            "format": "HDF5",
            "formatVersion": "1.10.11",
            "language": "eng",
            "maintenanceAndUpdateFrequency": "asNeeded",
            "maintenanceDate": created,
            "originatorOrganizationName": "Jet Propulsion Laboratory",
            "otherCitationDetails": f"The Validated Release of the SMAP {product.smap_short_name} Science Processing "
            "Software.",
            "purpose": f"The SMAP {product.smap_short_name} effort provides soil moistures based on radiometer data on a "
            f"{product.grid.label} grid.",
            "shortName": product.short_name,
            "spatialRepresentationType": "grid",
            "status": "onGoing",
            "topicCategory": "geoscientificInformation",
        },
        "ProductSpecificationDocument": {
            "SMAPShortName": product.smap_short_name,
            "characterSet": "utf8",
            "language": "eng",
            "title": f"Product Specification Document for the SMAP Level 3 Passive Soil Moisture Product "
            f"({product.smap_short_name})",
        },
        "QADatasetIdentification": {
            "creationDate": created,
            "fileName": file_name.replace(".h5", ".qa"),
        },
        "SeriesIdentification": {
            "CompositeReleaseID": crid[:3],
            "ECSVersionID": product.version,
            "identifier_product_DOI": "",
            "longName": product.long_name,
            "mission": "SMAP",
            "pointOfContact": "National Snow and Ice Data Center",
            "resourceProviderOrganizationName": "National Aeronautics and Space Administration (NASA)",
            "shortName": product.short_name,
        },
    }


def _grid_metadata(product: _Product, day: date) -> dict[str, dict[str, Attr]]:
    """The extent and the EASE-Grid 2.0 spatial representation."""
    rows, cols = product.grid.shape
    km = float(product.grid.label.split()[0])
    return {
        "Extent": {
            "description": "Soil moisture is retrieved over land targets on the descending (AM) and ascending (PM) SMAP "
            "half-orbits. The product represents soil moisture retrieved over the entire UTC day.",
            "eastBoundLongitude": np.float32(180.0),
            "northBoundLatitude": np.float32(85.0445),
            "rangeBeginningDateTime": f"{day.isoformat()}T00:00:00.000Z",
            "rangeEndingDateTime": f"{day.isoformat()}T23:59:59.999Z",
            "southBoundLatitude": np.float32(-85.0445),
            "westBoundLongitude": np.float32(-180.0),
        },
        "GridSpatialRepresentation": {
            "cellGeometry": "point",
            "controlPointAvailability": "0",
            "georeferencedParameters": "SMAP Fixed Earth Grids, SMAP Science Document no:  033, May 11, 2009",
            "numberOfDimensions": np.int64(2),
            "orientationParameterAvailability": "0",
            "transformationParameterAvailability": "0",
        },
        "GridSpatialRepresentation/Column": {
            "dimensionSize": np.uint32(cols),
            "resolution": np.float32(km),
        },
        "GridSpatialRepresentation/GridDefinition": {
            "description": "The Equal-Area Scalable Earth Grid (EASE-Grid 2.0) is used for gridding satellite data sets.",
            "identifier": "Equal-Area Scalable Earth Grid",
        },
        "GridSpatialRepresentation/GridDefinitionDocument": {
            "edition": "EASE-Grid 2.0",
            "publicationDate": "2012-03-31",
            "title": "EASE-Grid 2.0: Incremental but Significant Improvements for Earth-Gridded Data Sets (ISPRS Int. J. "
            "Geo-Inf. 2012, 1, 32-45; doi:10.3390/ijgi1010032)",
        },
        "GridSpatialRepresentation/Row": {
            "dimensionSize": np.uint32(rows),
            "resolution": np.float32(km),
        },
    }


def _processing(product: _Product, day: date) -> dict[str, dict[str, Attr]]:
    """Lineage, orbits and the processing step."""
    created = (day + timedelta(days=2)).isoformat()
    km = float(product.grid.label.split()[0])
    rev0 = 869 + round((day - date(2015, 4, 1)).days * 14.6222)
    return {
        "Lineage": {},
        "Lineage/EASEGRID_LON_M": {
            "creationDate": "2013-05-09",
            "description": f"Precomputed longitude at each EASEGrid cell on {product.grid.label} grid on Global "
            "Cylindrical Projection",
            "fileName": f"EZ2Lon_M{int(km):02d}_002.float32",
            "version": "002",
        },
        "OrbitMeasuredLocation": {
            "startRevNumber": np.int32(rev0),
            "stopRevNumber": np.int32(rev0 + 29),
        },
        "ProcessStep": {
            "SWVersionID": "008",
            "epochJulianDate": np.float32(2451545.0),
            "epochUTCDateTime": "2000-01-01T11:58:55.816Z",
            "identifier": f"{product.smap_short_name}_SPS",
            "processor": "Soil Moisture Active Passive Mission (SMAP) Science Data System (SDS) Operations Facility",
            "stepDateTime": f"{created}T00:00:00.000Z",
            "timeVariableEpoch": "J2000",
        },
    }


def metadata_tree(
    product: _Product, day: date, crid: str, file_name: str, stats: Mapping[str, float]
) -> dict[str, dict[str, Attr]]:
    """Subgroup path → attributes of the ``Metadata`` group (names as in the real granule)."""
    tree = {
        **_acquisition(),
        **_quality(stats),
        **_identification(product, day, crid, file_name),
        **_grid_metadata(product, day),
        **_processing(product, day),
    }
    return dict(sorted(tree.items()))


def write_metadata(root: h5py.File, tree: Mapping[str, Mapping[str, Attr]]) -> None:
    meta = root.create_group("Metadata")
    vlen = h5py.string_dtype("ascii")
    for path, attrs in tree.items():
        group = meta.require_group(path)
        for name, value in attrs.items():
            if isinstance(value, str):
                group.attrs.create(name, value, dtype=vlen)
            else:
                group.attrs.create(name, value)


# ---------------------------------------------------------------------------------------------
# Data groups
