"""Any labelled video dataset on disk (folder tree or annotation CSV): TFDS builder."""

from .video_folder_dataset_builder import Builder, VideoFolderConfig, list_video_folder

__all__ = ["Builder", "VideoFolderConfig", "list_video_folder"]
