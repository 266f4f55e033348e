"""Score-based diffusion models on the lattice (arXiv:2309.17082): SDEs, the U-Net score
network, denoising score matching with exact resume, and interchangeable samplers."""
