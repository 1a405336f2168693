"""StarGAN (Choi et al., CVPR 2018): one generator for image translation among many domains."""

__version__ = "0.1.0"
