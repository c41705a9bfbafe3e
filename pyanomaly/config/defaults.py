"""Every configuration key, its default and what it means.

A YAML file overrides only what differs; ``KEY VALUE`` pairs on the command line override
last. Sections whose keys are free-form (``MODEL.ARGS``, ``DATASET.ARGS``) hold keyword
arguments passed unchanged to the registered class named beside them. A *spec* key
(``CN({"type": ...}, new_allowed=True)``, e.g. ``TRAIN.LR_SCHEDULE``) names a registered part
and holds its arguments: ``{type: NAME, <arguments>}``, or a bare name.
"""
from yacs.config import CfgNode as CN

_C = CN()

# ---------------------------------------------------------------------------------------
_C.SYSTEM = CN()
_C.SYSTEM.OUTPUT_DIR = "outputs/run"  # run directory: config.yaml, log.txt, checkpoints/, scores/, plots/
_C.SYSTEM.SEED = 0  # seeds python, numpy and torch (and the data order)
_C.SYSTEM.DEVICE = "auto"  # "auto" (cuda if available), "cpu" or "cuda"
_C.SYSTEM.IMPORTS = []  # modules (names or .py paths) imported before building: user plugins
_C.SYSTEM.NUM_THREADS = 0  # torch intra-op threads; 0 = the cores this process may use (its affinity), shared among torchrun's processes on the machine, unless OMP_NUM_THREADS is set
_C.SYSTEM.DETERMINISTIC = False  # torch.use_deterministic_algorithms (exact resume on GPU)
_C.SYSTEM.TF32 = True  # CUDA: TensorFloat-32 matmuls and convolutions (Ampere and later; faster, ~1e-3 relative error)

# ---------------------------------------------------------------------------------------
_C.DATASET = CN()
_C.DATASET.NAME = "synthetic"  # registered dataset: synthetic, folder, ped1, ped2, avenue, shanghaitech
_C.DATASET.ROOT = "data/synthetic"  # dataset folder (generated there for "synthetic" when missing)
_C.DATASET.CLIP_LENGTH = 10  # frames per training clip (and history used to predict a test frame)
_C.DATASET.CLIP_STRIDE = 1  # step between the starts of consecutive training clips
_C.DATASET.FRAME_STEP = 1  # temporal subsampling inside a clip (1 = consecutive frames)
_C.DATASET.IMAGE_SIZE = [64, 64]  # [H, W] frames are resized to
_C.DATASET.CHANNELS = 1  # 1 = grayscale, 3 = RGB; values are float in [0, 1]
_C.DATASET.CACHE_DIR = ""  # decoded-frame cache (uint8 .npy per video); "" = ~/.cache/pyanomaly
_C.DATASET.ACCEPT_TRUNCATED = False  # use truncated videos/frame files as decoded (a warning each) instead of failing
_C.DATASET.NUM_WORKERS = 0  # DataLoader worker processes
_C.DATASET.TRAIN_TRANSFORMS = []  # training-only clip transforms, [{type: RandomCrop, size: [128, 128]}, ...]
_C.DATASET.FLOW = CN({"type": "none"}, new_allowed=True)  # optical flow as a modality, cached beside the frames: {type: dis, preset: medium} (DIS presets ultrafast, fast, medium) or {type: farneback}; each training clip then has "flow" (T-1, 2, H, W) for a method to read; "none" = frames only
_C.DATASET.ARGS = CN(new_allowed=True)  # extra keyword arguments of the dataset class

# ---------------------------------------------------------------------------------------
_C.MODEL = CN()
_C.MODEL.NAME = "PredNetPredictor"  # registered method (see docs/plugins.md)
_C.MODEL.ARGS = CN(new_allowed=True)  # keyword arguments of the method, e.g. its network dict

# ---------------------------------------------------------------------------------------
_C.TRAIN = CN()
_C.TRAIN.MAX_STEPS = 1000  # optimisation steps
_C.TRAIN.BATCH_SIZE = 4  # clips per step (per process under torchrun)
_C.TRAIN.OPTIMIZER = "Adam"  # any torch.optim class name
_C.TRAIN.LR = 1e-3  # learning rate
_C.TRAIN.WEIGHT_DECAY = 0.0  # weight decay of the optimizer
_C.TRAIN.LR_SCHEDULE = CN({"type": "cosine"}, new_allowed=True)  # registered LR schedule {type: NAME, <args>} (engine/lr_schedules.py): "constant", "cosine" (1 -> 0 at MAX_STEPS) or "step" (milestones: [steps], gamma: 0.1); each takes warmup_steps (linear warm-up, default 0)
_C.TRAIN.GRAD_CLIP = 0.0  # max gradient norm; 0 = off
_C.TRAIN.MAX_FRAMES = 50000  # a step-trained method reads at most about this many frames of the training split: the first ceil(N / videos) of each video, the rest never decoded (a large split: ShanghaiTech's 274,000 frames); 0 = every frame
_C.TRAIN.FIT_MAX_FRAMES = 20000  # a method fitted by reading the training videos once (baselines, Fusion statistics, STREAMER, EVAL.BASELINES) reads at most about this many: the first ceil(N / videos) frames of each video, the rest never decoded; 0 = every frame
_C.TRAIN.EMA_DECAY = 0.0  # evaluate, save and publish a moving average of the weights (engine/ema.py): plain mean for the first 1/(1-d) updates, then exponential with decay d; 0 = off (the last step's weights)
_C.TRAIN.EMA_START = 0  # steps left out of that average (the first, far-from-trained weights)
_C.TRAIN.EMA_BN_BATCHES = 200  # batches of training clips over which the averaged weights' batch-norm statistics are computed again (0 = keep the trained model's)
_C.TRAIN.EVAL_PERIOD = 500  # evaluate on the test split every N steps (and at the end); 0 = end only; -1 = never (the test split is not read: a run that only trains, such as a fusion's cue)
_C.TRAIN.CHECKPOINT_PERIOD = 500  # write checkpoints/last.pth every N steps (and at the end)
_C.TRAIN.KEEP_CHECKPOINTS = 0  # also keep step_XXXXXXX.pth files: the newest K (0 = only last/best)
_C.TRAIN.BEST_METRIC = "auc_micro"  # metrics.json key that selects checkpoints/best.pth
_C.TRAIN.BEST_MODE = "max"  # "max" or "min" for BEST_METRIC
_C.TRAIN.EARLY_STOP_PATIENCE = 0  # stop after N evaluations without a better BEST_METRIC; 0 = off
_C.TRAIN.LOG_PERIOD = 20  # log losses every N steps
_C.TRAIN.TENSORBOARD = True  # write TensorBoard scalars and image grids to OUTPUT_DIR/tb
_C.TRAIN.IMAGE_PERIOD = 100  # TensorBoard image grid of input/prediction/error every N steps; 0 = off
_C.TRAIN.AMP = False  # mixed precision on CUDA (float16 autocast + GradScaler); ignored with a warning on CPU
_C.TRAIN.COMPILE = False  # torch.compile the model
_C.TRAIN.CUSTOM_HOOKS = []  # extra hooks: list of dicts {type: Name, ...args}, run after the built-ins

# ---------------------------------------------------------------------------------------
_C.TEST = CN()
_C.TEST.SPLIT = "testing"  # split scored by evaluation and tools/test.py ("training" is read under TRAIN.MAX_FRAMES)
_C.TEST.CHUNK = 64  # frames per forward pass when a video is predicted as a stream
_C.TEST.PRECISION = "fp32"  # test-time prediction: "fp32", or "bf16" (bfloat16 autocast; fast where the CPU has AVX-512 BF16/AMX, and on GPUs)
_C.TEST.PSEUDO_ANOMALY = CN({"type": "none"}, new_allowed=True)  # score TEST.SPLIT with one labelled pseudo-anomaly per video (run on "training" to choose settings without test labels), {type: NAME, <args>} (datasets/pseudo.py): "frame_skip" (a segment played skip: 2 times too fast) or "fast_object" (a walker cut out and moved at speed: 0.012 frame widths a frame, size: 0.15 of the frame height); both take length: 20 (anomalous frames) and margin: 0 (normal frames before the segment, at least; 0 = DATASET.CLIP_LENGTH); "none" = the split as it is
_C.TEST.FUSED_UPDATE = False  # test-time: the LSTM cell update as one torch.compile'd pass (needs a C++ compiler; seconds to compile once, then 1.1-1.3x faster recurrent models)

# ---------------------------------------------------------------------------------------
_C.SCORE = CN()
_C.SCORE.ERROR = "PSNR"  # registered scorer: "PSNR" (dB, lower = anomalous), "MSE", "AREA" (fraction of mispredicted pixels); for a method giving an anomaly map (FlowSpeed): "CELL_MAX" (largest PATCH x PATCH cell mean) or "CELL_TOP" (mean of the top TOP_FRACTION of cells); for a method giving its own error per frame (Fusion): "FRAME_ERROR"
_C.SCORE.MAX_VAL = 1.0  # peak value of a frame: PSNR's peak, the unit of PIXEL_THRESHOLD (frames are in [0, 1])
_C.SCORE.PATCH = 0  # >0: error is the worst PATCH x PATCH patch instead of the frame mean (CELL_*: the cell size; 0 = one cell)
_C.SCORE.PIXEL_THRESHOLD = 0.05  # AREA: a pixel is mispredicted when its absolute error exceeds this fraction of MAX_VAL
_C.SCORE.TOP_FRACTION = 0.01  # CELL_TOP: the share of cells (the highest) whose mean is the frame's error
_C.SCORE.NORMALIZE = CN({"type": "minmax"}, new_allowed=True)  # registered normaliser {type: NAME, <args>}: "minmax" (per video, offline), "none", or "causal" (args: window, warmup, exclude_above, min_std; see STREAM.NORMALIZE)
_C.SCORE.SMOOTH_SIGMA = 0.0  # Gaussian smoothing of scores in frames; 0 = off (fixed before testing)
_C.SCORE.SMOOTH_MODE = "centred"  # "centred" (offline, reads later frames) or "causal" (earlier frames only)
_C.SCORE.MISSING = "exclude"  # frames without a prediction: "exclude" from metrics or "fill" (nearest scored frame)

# ---------------------------------------------------------------------------------------
# Live scoring (tools/score_video.py): every score final when its frame is read.
_C.STREAM = CN()
_C.STREAM.NORMALIZE = CN({"type": "causal", "window": 300, "warmup": 25, "exclude_above": 3.0, "min_std": 0.0}, new_allowed=True)  # causal normaliser: z-score against the last `window` normal frames, none for the first `warmup`, frames above `exclude_above` kept out of the history, std floored at `min_std` (error units; AREA on a static camera: ~0.0002)
_C.STREAM.SMOOTH_SIGMA = 0.0  # one-sided (causal) Gaussian smoothing of the scores in frames; 0 = off
_C.STREAM.ALARM_THRESHOLD = 3.0  # a frame alarms when its score exceeds this
_C.STREAM.ALARM_MIN_FRAMES = 5  # an alarm needs at least this many consecutive alarming frames
_C.STREAM.FPS = 0.0  # frame rate for time_s and alarm times; 0 = the video's own (25 if it has none)
_C.STREAM.RENDER_FORMAT = "mp4"  # --render: "mp4" (mp4v codec) or "avi" (MJPG)
_C.STREAM.QUEUE_SIZE = 16  # live sources (camera, rtsp/http URL): frames buffered between reading and scoring; when full the oldest is dropped (counted in alarms.json)
_C.STREAM.RECONNECT_DELAY = 0.5  # live sources: seconds before the first reconnect after the stream stops; doubles after each failed try
_C.STREAM.RECONNECT_MAX_DELAY = 8.0  # live sources: the longest wait between reconnect tries
_C.STREAM.RECONNECT_GIVE_UP = 60.0  # live sources: seconds without a frame after which the source is given up (an error if it never gave one)
_C.STREAM.TIMEOUT = 10.0  # live URLs: seconds OpenCV's FFmpeg backend waits to open the stream or for a frame before it counts as stopped

# ---------------------------------------------------------------------------------------
_C.EVAL = CN()
_C.EVAL.PLOTS = True  # write plots/ (one score curve per video and the ROC curve)
_C.EVAL.EVALUATORS = ["FrameLevel", "FixedThreshold", "PerGroup"]  # registered evaluators merged into metrics.json
_C.EVAL.BASELINES = []  # methods without learning scored beside the recipe on the same videos and protocol, written to metrics.json "baselines", the log and report.html: [{type: CopyLast}, {type: FlowSpeed, excess: 0.99, name: NAME, score: {ERROR: CELL_MAX, PATCH: 16}}] (score: SCORE keys changed for that baseline)
_C.EVAL.THRESHOLDS = []  # fixed score thresholds at which precision/recall/F1 are reported; [] = none
_C.EVAL.NPY = True  # also write scores/npy/<video>_{error,score,label}.npy
_C.EVAL.REPORT = True  # write report.html (metrics, protocol, per-video table, top-scoring frames)
_C.EVAL.REPORT_TOP_K = 6  # top-scoring frames shown in report.html with prediction and error map; 0 = none
_C.EVAL.SAVE_MAPS = False  # also write scores/maps/<video>.npy: each frame's per-pixel error map (N, h, w) float16, NaN where no prediction (costs a map per frame; not with SCORE.ERROR FRAME_ERROR)
_C.EVAL.MAPS_DOWNSAMPLE = 4  # saved maps (EVAL.SAVE_MAPS, pyanomaly score --maps) are averaged over f x f pixel blocks: (H, W) -> (ceil(H/f), ceil(W/f)); 1 = full size

# ---------------------------------------------------------------------------------------
_C.LOG = CN()
_C.LOG.LEVEL = "INFO"  # logging level of console and log.txt
_C.LOG.PROGRESS = True  # progress bars on the console (never written to log.txt)


# ---------------------------------------------------------------------------------------
# What each key accepts beyond its type, checked by the loader (pyanomaly.config) after every
# merge: a value outside these is refused naming the key, instead of a run that silently does
# nothing (MAX_STEPS -5) or fails deep inside (TEST.CHUNK 0).
CHOICES = {
    "SYSTEM.DEVICE": ("auto", "cpu", "cuda"),
    "DATASET.CHANNELS": (1, 3),
    "TRAIN.BEST_MODE": ("max", "min"),
    "TEST.PRECISION": ("fp32", "bf16"),
    "SCORE.SMOOTH_MODE": ("centred", "causal"),
    "SCORE.MISSING": ("exclude", "fill"),
    "STREAM.RENDER_FORMAT": ("mp4", "avi"),
    "LOG.LEVEL": ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
}
AT_LEAST = {  # key: smallest value allowed
    "SYSTEM.NUM_THREADS": 0, "DATASET.CLIP_LENGTH": 2, "DATASET.CLIP_STRIDE": 1, "DATASET.FRAME_STEP": 1,
    "DATASET.NUM_WORKERS": 0, "TRAIN.MAX_STEPS": 1, "TRAIN.BATCH_SIZE": 1, "TRAIN.WEIGHT_DECAY": 0.0,
    "TRAIN.GRAD_CLIP": 0.0, "TRAIN.EVAL_PERIOD": -1, "TRAIN.CHECKPOINT_PERIOD": 0, "TRAIN.KEEP_CHECKPOINTS": 0,
    "TRAIN.EARLY_STOP_PATIENCE": 0, "TRAIN.LOG_PERIOD": 0, "TRAIN.IMAGE_PERIOD": 0, "TEST.CHUNK": 1,
    "SCORE.PATCH": 0, "SCORE.SMOOTH_SIGMA": 0.0, "STREAM.SMOOTH_SIGMA": 0.0, "STREAM.ALARM_MIN_FRAMES": 1,
    "STREAM.FPS": 0.0, "EVAL.REPORT_TOP_K": 0, "EVAL.MAPS_DOWNSAMPLE": 1, "TRAIN.MAX_FRAMES": 0,
    "TRAIN.FIT_MAX_FRAMES": 0, "TRAIN.EMA_START": 0, "TRAIN.EMA_BN_BATCHES": 0,
}
ABOVE = {"TRAIN.LR": 0.0, "SCORE.MAX_VAL": 0.0}  # key: a bound the value must exceed
SPEC_LISTS = ("DATASET.TRAIN_TRANSFORMS", "TRAIN.CUSTOM_HOOKS")  # lists of {type: NAME, <arguments>}


def get_defaults() -> CN:
    """A fresh copy of the defaults."""
    return _C.clone()
