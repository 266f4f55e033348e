"""Phase diagram of learning (arXiv:2509.01349): batched teacher-student
training (:mod:`teacher_student`), per-run observables and grid cells (:mod:`cells`), phase
classification (:mod:`classify`) and semi-analytic boundaries (:mod:`boundaries`)."""
