"""Standard data sets: the catalogue (sources, terms, checksums) and verified, resumable fetching."""

from .catalog import DATASETS, DatasetSource, RemoteFile
from .download import dataset_folder, default_cache, fetch_dataset, fetch_file

__all__ = ["DATASETS", "DatasetSource", "RemoteFile", "dataset_folder", "default_cache", "fetch_dataset", "fetch_file"]
