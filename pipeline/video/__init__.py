"""Video: reading, tracking, per-track recognition, sightings and their outputs.

    from pipeline import Pipeline
    from pipeline.video import scan_video, write_scan_outputs

    result = scan_video("clip.mp4", Pipeline.default(), recogniser)
    write_scan_outputs(result, "out/")
"""

from .engine import FrameOutput, LiveSession, ScanResult, Sighting, VideoEngine, decide_track, scan_video
from .outputs import H264Writer, write_scan_outputs, write_video
from .reader import VIDEO_EXTENSIONS, VideoInfo, iter_frames, probe_video
from .tracker import FaceTracker

__all__ = ["FaceTracker", "FrameOutput", "H264Writer", "LiveSession", "ScanResult", "Sighting", "VIDEO_EXTENSIONS",
           "VideoEngine", "VideoInfo", "decide_track", "iter_frames", "probe_video", "scan_video",
           "write_scan_outputs", "write_video"]
