"""Training scripts for the learned enhancement models (never imported at run time).

Usage::

    python -m pipeline.train srcnn  --scale 3 --seconds 2400
    python -m pipeline.train fsrcnn --scale 4 --seconds 600
    python -m pipeline.train deblur --seconds 3600

Each run is deterministic for a given ``--seed`` (on CPU), prints progress,
writes a checkpoint every ``--checkpoint-every`` seconds into ``--work``,
resumes from it with ``--resume``, and finally writes
``<out>/<name>.weights.h5`` and ``<out>/<name>.json`` (metrics, sha256 and
the exact settings).  The model code is backend-agnostic Keras 3: set
``KERAS_BACKEND=torch`` (or ``jax``) to train on a GPU box without TensorFlow;
the ``.weights.h5`` files load in the TensorFlow backend unchanged.

The shipped weights were made on one H200 with ``run_all_gpu.sh`` (all seven
models in parallel, 330 s each; the deblurring generator then resumed for
250 s more with ``--resume --lr 4e-4``); each ``weights/*.json`` records the
exact settings, step counts and training-time metrics.  On this project's
2-core CPU, SRCNN x3 needs roughly 40 minutes to reach the same quality.
"""
