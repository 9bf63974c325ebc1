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
"""
