"""Data preparation: raw CelebA and RaFD downloads to prepared folders that training memory-maps.

See docs/data.md for the commands, the output format, the crop and split rules and the errors reported.
"""

from stargan_core.prepare.celeba import parse_attribute_file, prepare_celeba
from stargan_core.prepare.rafd import RAFD_FACE_BOX, find_expression_images, prepare_rafd

__all__ = ["RAFD_FACE_BOX", "find_expression_images", "parse_attribute_file", "prepare_celeba", "prepare_rafd"]
