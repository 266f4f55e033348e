"""SGD and random matrix theory (PHYSICS.md section 4): weight-matrix spectra and their
analysis (:mod:`spectra`), Dyson Brownian motion (:mod:`dbm`), the solvable linear
teacher-student model (:mod:`linear_sgd`), a small character-level transformer
(:mod:`transformer`, corpus in :mod:`corpus`) and the effective temperature of SGD
(:mod:`temperature`)."""
