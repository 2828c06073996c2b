"""AFEW (Acted Facial Expressions in the Wild): TFDS builder, manual download."""

from .afew_dataset_builder import Builder, list_afew

__all__ = ["Builder", "list_afew"]
