"""Writers for the providers' real file formats, used by the offline twin's replicas."""
