"""Training scripts for the learned enhancement models (never imported at run time).

Usage::

    python -m pipeline.train srcnn  --scale 3 --seconds 2400
    python -m pipeline.train srcnn  --scale 3 --map-rank 32 --init srcnn_955_x3.weights.h5 --lr 5e-4
    python -m pipeline.train fsrcnn --scale 4 --seconds 600
    python -m pipeline.train deblur --seconds 3600

Each run is deterministic for a given ``--seed`` (on CPU), prints progress,
writes a checkpoint every ``--checkpoint-every`` seconds into ``--work``,
resumes from it with ``--resume``, and finally writes
``<out>/<name>.weights.h5`` and ``<out>/<name>.json`` (metrics, sha256 and
the exact settings).  The model code is backend-agnostic Keras 3: set
``KERAS_BACKEND=torch`` (or ``jax``) to train on a GPU box without TensorFlow;
the ``.weights.h5`` files load in the TensorFlow backend unchanged.

The second SRCNN line builds the lighter, shipped variant (mapping layer
factorised into 5x1 and 1x5 convolutions, :mod:`pipeline.models.srcnn`) and
starts it from the SVD of trained 9-5-5 weights (:mod:`pipeline.train.lowrank`)
before fine-tuning; ``weights/srcnn_x*.json`` record how each shipped SRCNN was
made (fine-tuned on the project's 2-core CPU from the 9-5-5 weights below).

The other shipped weights were made on one H200 with ``run_all_gpu.sh`` (all seven
models in parallel, 330 s each; the deblurring generator then resumed for
250 s more with ``--resume --lr 4e-4``, and later trained 430 s more with
``run_deblur_gpu.sh``: ``deblur-gpu``, a PyTorch twin of the generator fed by
blur, noise and JPEG made on the GPU, ~7x the crops per second, imported with
``deblur-import``); each ``weights/*.json`` records the exact settings, step
counts and training-time metrics.

GPU deblurring run, end to end::

    python -m pipeline.train deblur-data --out .traindata/deblur \
        --init-from weights/deblurgan_v2_fpn_mobilenet.weights.h5      # here, ~30 MB
    BUDGET=430 OUT=/tmp/out bash pipeline/train/run_deblur_gpu.sh       # on the GPU box
    python -m pipeline.train deblur-import /tmp/out/deblurgan_v2_fpn_mobilenet.keras.npz \
        --gpu-json /tmp/out/deblurgan_v2_fpn_mobilenet.gpu.json          # here: Keras weights + JSON  On this project's
2-core CPU, SRCNN x3 needs roughly 40 minutes to reach the same quality.
"""
