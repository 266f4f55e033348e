"""SGD and random matrix theory (docs/rmt.md): weight-matrix spectra and their
analysis (:mod:`spectra`, :mod:`analysis`), Dyson Brownian motion and its finite-n Coulomb-gas
check (:mod:`dbm`), the solvable linear teacher-student model (:mod:`linear_sgd`), the MLP on
fresh noisy batches (:mod:`mlp`), the Gaussian RBM (:mod:`rbm`), a small character-level
transformer (:mod:`transformer`, corpus in :mod:`corpus`), power-law tails of its spectra
(:mod:`tails`), the effective temperature of SGD and its fits (:mod:`temperature`, over a grid
in :mod:`grid`) and the numbers of docs/rmt.md (:mod:`report`)."""
