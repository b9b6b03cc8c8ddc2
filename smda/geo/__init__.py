"""Geometry of the grids: the 0.25° grid, EASE-Grid 2.0, regridding, the land mask (pure)."""
