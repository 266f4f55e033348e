"""SGD and random matrix theory (docs/rmt.md): weight-matrix spectra and their
analysis (:mod:`spectra`), Dyson Brownian motion (:mod:`dbm`), the solvable linear
teacher-student model (:mod:`linear_sgd`), a small character-level transformer
(:mod:`transformer`, corpus in :mod:`corpus`), power-law tails of its spectra (:mod:`tails`)
and the effective temperature of SGD (:mod:`temperature`)."""
