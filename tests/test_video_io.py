import numpy as np
import pytest
import torch

from fairseq_slt.data.sampling import sample_indices
from fairseq_slt.data.video_io import VideoSource, list_frame_files, read_frames, time_range_to_frames


def psnr(a, b):
    mse = ((a - b) ** 2).mean()
    return float(10 * torch.log10(255.0**2 / mse))


def test_list_frame_files_numeric_order(tmp_path):
    for name in ("images10.png", "images2.png", "images1.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.split("/")[-1] for p in list_frame_files(str(tmp_path))] == [
        "images1.png", "images2.png", "images10.png",
    ]


def test_time_range_to_frames():
    assert time_range_to_frames(1.0, 2.0, 25.0) == range(25, 50)
    assert time_range_to_frames(0.5, 0.5, 25.0) == range(12, 12) or len(time_range_to_frames(0.5, 0.5, 25)) == 0


def test_mp4_and_frame_folder_give_the_same_frames(tiny_corpus):
    video = tiny_corpus / "videos" / "train" / "train_00000.mp4"
    folder = tiny_corpus / "frames" / "train" / "train_00000"
    n = len(list_frame_files(str(folder)))
    idx = sample_indices(n, 0.25, 300, train=False)
    a = read_frames(VideoSource(str(video)), idx, n).float()
    b = read_frames(VideoSource(str(folder)), idx, n).float()
    assert a.shape == b.shape == (len(idx), 48, 48, 3)
    assert psnr(a, b) > 26.0  # H.264 crf 12, 4:2:0 chroma on saturated 48 px figures; a wrong frame gives ~20


def test_time_range_reads_the_right_frames(tiny_corpus):
    video = tiny_corpus / "videos" / "train" / "train_00001.mp4"
    folder = tiny_corpus / "frames" / "train" / "train_00001"
    # frames [10, 20) of a 25 fps video are the time range [0.4, 0.8) s
    part = read_frames(VideoSource(str(video), 0.4, 0.8), [0, 5, 9], 10).float()
    ref = read_frames(VideoSource(str(folder)), [10, 15, 19], len(list_frame_files(str(folder)))).float()
    assert psnr(part, ref) > 26.0
    # each decoded frame is closest to the frame it should be, not to a neighbour
    full = read_frames(VideoSource(str(folder)), range(30), len(list_frame_files(str(folder)))).float()
    for j, want in enumerate([10, 15, 19]):
        assert max(range(30), key=lambda i: psnr(part[j], full[i])) == want


def test_decord_and_pyav_decode_the_same_frames(tmp_path):
    """decord reads 64 px wide videos itself; 48 px wide ones go through the PyAV fallback."""
    from fairseq_slt.data.video_io import _decord_reader, _pyav_frames
    from fairseq_slt.synthetic.generate import write_mp4

    rng = np.random.default_rng(0)
    video = rng.integers(0, 255, (40, 32, 64, 3), dtype=np.uint8)
    video[:, :, :8] = np.arange(40, dtype=np.uint8)[:, None, None, None] * 6  # a per-frame marker
    path = str(tmp_path / "v.mp4")
    write_mp4(path, video)
    idx = [0, 3, 17, 39]
    by_decord = _decord_reader(path).get_batch(idx).asnumpy()
    by_pyav = _pyav_frames(path, idx, None)
    assert by_decord.shape == by_pyav.shape == (4, 32, 64, 3)
    assert np.abs(by_decord.astype(int) - by_pyav.astype(int)).max() <= 2
    # with a start time, PyAV seeks and counts frames from there
    assert np.array_equal(_pyav_frames(path, [0, 2], 0.4), _pyav_frames(path, [10, 12], None))


FORKED_WORKER = """
import os, sys, threading
import numpy as np, torch
from fairseq_slt.data.video_io import VideoSource, read_frames
src = VideoSource(sys.argv[1])
read_frames(src, [0, 5], 20, min_size=[32])  # the main thread decodes and scales first

class Frames(torch.utils.data.Dataset):
    def __len__(self):
        return 4
    def __getitem__(self, i):
        return read_frames(src, [i], 20, min_size=[32])

def load():  # as fairseq does: the DataLoader's worker is forked from a background thread
    for _ in torch.utils.data.DataLoader(Frames(), batch_size=2, num_workers=1):
        pass

t = threading.Thread(target=load)
t.start()
t.join(60)
print("hung" if t.is_alive() else "ok", flush=True)
os._exit(0)
"""


@pytest.mark.slow
def test_a_worker_forked_after_scaled_decoding_does_not_hang(tmp_path):
    """PyAV keeps a scaler per thread, with swscale's worker threads; a process forked afterwards
    (a DataLoader worker) hung freeing it. Our scaler has one thread and lives for one video."""
    import subprocess
    import sys

    from fairseq_slt.synthetic.generate import write_mp4

    path = tmp_path / "a.mp4"
    write_mp4(str(path), (np.random.default_rng(0).random((20, 96, 128, 3)) * 255).astype(np.uint8))
    script = tmp_path / "fork.py"
    script.write_text(FORKED_WORKER)
    proc = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=120,
                          start_new_session=True)
    assert proc.stdout.strip().splitlines()[-1] == "ok", proc.stderr[-2000:]
