"""Tests of data.py's trust guarantees: the feature cache never gives wrong numbers silently (checked
rows, repaired with one line), every data fault ends in one line (non-UTF-8 metadata, a full disk, a
read-only cache folder, SIGTERM / kill -9 during the build), and two commands started together do
the work once (FolderLock, ensure_synth). Small generated sets, as test_cil.py's fixtures."""
import errno
import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import data

# =============================================================================
# fixtures: small generated datasets (module scope: built once), as in test_cil.py

@pytest.fixture(scope="module")
def gsc_root(tmp_path_factory):
    return data.synth_speechcommands(tmp_path_factory.mktemp("gsc"), seed=0, speakers=10, max_reps=1,
                                     noise_seconds=2.0, progress=False)


@pytest.fixture(scope="module")
def us8k_root(tmp_path_factory):
    return data.synth_urbansound8k(tmp_path_factory.mktemp("us8k"), seed=0, clips_per_class=8, progress=False)


@pytest.fixture(scope="module")
def as_root(tmp_path_factory):
    return data.synth_audioset(tmp_path_factory.mktemp("as"), seed=0, n_train=150, n_eval=70, seconds=1.0,
                               missing=0.05, progress=False)


@pytest.fixture(scope="module")
def gsc(gsc_root):
    return data.load_dataset("speechcommands", gsc_root)


@pytest.fixture(scope="module")
def few(gsc):
    """The first 48 clips: a cache small enough to rebuild in every test."""
    return gsc.select(np.arange(48))


@pytest.fixture(scope="module")
def clean(few, tmp_path_factory):
    """A cache built once from scratch, and every clip's features read from it."""
    root = tmp_path_factory.mktemp("clean_cache")
    cache = data.build_cache(few, root, workers=1, progress=False)
    return root, cache.read(np.arange(len(few)))


def copy_cache(clean, tmp_path):
    root = tmp_path / "cache"
    shutil.copytree(clean[0], root)
    folder = next(root.iterdir())
    return root, folder, folder / "features.f16", folder / "manifest.json"


def one_line(text):
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def rebuild(few, root, capsys, **kw):
    capsys.readouterr()
    cache = data.build_cache(few, root, workers=1, progress=False, **kw)
    return cache, capsys.readouterr().err


# =============================================================================
# the feature cache: damage is found when the cache is opened, repaired, and said in one line

def test_truncated_cache_is_recomputed_not_zero_filled(few, clean, tmp_path, capsys):
    root, folder, dpath, _ = copy_cache(clean, tmp_path)
    full = dpath.stat().st_size
    row_bytes = full // len(few)
    os.truncate(dpath, full // 2 + 100)  # half, and part of one row
    lost = len(few) - (full // 2 + 100) // row_bytes
    cache, err = rebuild(few, root, capsys)
    line = one_line(err)
    assert str(dpath) in line and "cut short" in line and f"recomputing {lost} clips" in line
    assert cache.stats["repaired"] == cache.stats["computed"] == lost and cache.stats["note"] == line
    assert dpath.stat().st_size == full
    assert np.array_equal(cache.read(np.arange(len(few))), clean[1])
    again, err = rebuild(few, root, capsys)
    assert err == "" and again.stats["computed"] == 0 and again.stats["reused"] == len(few)


def test_a_damaged_cache_that_cannot_be_repaired_is_not_grown(few, clean, tmp_path, monkeypatch):
    """Opening never zero-fills a short file to full size: with nothing writable the file is left as
    it is and the command stops with one line."""
    root, folder, dpath, _ = copy_cache(clean, tmp_path)
    os.truncate(dpath, dpath.stat().st_size // 2)
    before = dpath.stat().st_size
    read_only_folder(monkeypatch, root)
    with pytest.raises(data.DataError) as err:
        data.build_cache(few, root, workers=1, progress=False)
    line = one_line(str(err.value))
    assert str(folder) in line and "Permission denied" in line and "cut short" in line
    assert dpath.stat().st_size == before


def test_finite_garbage_in_rows_is_found_and_recomputed(few, clean, tmp_path, capsys):
    root, folder, dpath, _ = copy_cache(clean, tmp_path)
    row_bytes = dpath.stat().st_size // len(few)
    with open(dpath, "r+b") as f:
        for r in (0, 17, len(few) - 1):
            f.seek(r * row_bytes + 64)
            f.write(np.full(40, 1.5, np.float16).tobytes())  # plausible values, not NaN
    cache, err = rebuild(few, root, capsys)
    line = one_line(err)
    assert f"3 of its {len(few)} rows" in line and "recomputing 3 clips" in line
    assert cache.stats["repaired"] == cache.stats["computed"] == 3
    assert np.array_equal(cache.read(np.arange(len(few))), clean[1])


def test_random_bytes_are_found_and_recomputed(few, clean, tmp_path, capsys):
    root, folder, dpath, _ = copy_cache(clean, tmp_path)
    dpath.write_bytes(np.random.RandomState(0).bytes(dpath.stat().st_size))
    cache, err = rebuild(few, root, capsys)
    assert f"recomputing {len(few)} clips" in one_line(err)
    x = cache.read(np.arange(len(few)))
    assert np.isfinite(x).all() and np.array_equal(x, clean[1])


def test_a_manifest_pointing_rows_at_other_clips_is_caught(few, clean, tmp_path, capsys):
    root, folder, dpath, mpath = copy_cache(clean, tmp_path)
    m = json.loads(mpath.read_text())
    a, b = few.keys[5], few.keys[40]
    e = m["entries"]
    e[a]["row"], e[b]["row"] = e[b]["row"], e[a]["row"]  # a valid manifest, rows in another order
    mpath.write_text(json.dumps(m))
    cache, err = rebuild(few, root, capsys)
    assert f"2 of its {len(few)} rows" in one_line(err) and cache.stats["repaired"] == 2
    assert np.array_equal(cache.read(np.arange(len(few))), clean[1])


def test_two_clips_on_one_row_are_separated(few, clean, tmp_path, capsys):
    root, folder, dpath, mpath = copy_cache(clean, tmp_path)
    m = json.loads(mpath.read_text())
    m["entries"][few.keys[40]]["row"] = m["entries"][few.keys[5]]["row"]
    mpath.write_text(json.dumps(m))
    size = dpath.stat().st_size
    cache, err = rebuild(few, root, capsys)
    line = one_line(err)  # the row stays with the clip whose checksum it matches; the other moves
    assert "1 manifest entries had no valid row" in line and "recomputing 1 clips" in line
    assert "checksums" not in line and cache.stats["computed"] == cache.stats["repaired"] == 1
    assert len(set(cache.rows.tolist())) == len(few) and dpath.stat().st_size == size + 2048  # a new row
    assert np.array_equal(cache.read(np.arange(len(few))), clean[1])


def test_rows_moved_together_with_their_manifest_are_still_right(few, clean, tmp_path, capsys):
    root, folder, dpath, mpath = copy_cache(clean, tmp_path)
    m = json.loads(mpath.read_text())
    a, b = m["entries"][few.keys[5]], m["entries"][few.keys[40]]
    x = np.memmap(dpath, np.float16, "r+", shape=(len(few), 32, 32))
    x[[a["row"], b["row"]]] = x[[b["row"], a["row"]]]
    x.flush()
    del x
    a["row"], b["row"] = b["row"], a["row"]
    mpath.write_text(json.dumps(m))
    cache, err = rebuild(few, root, capsys)
    assert err == "" and cache.stats["computed"] == 0
    assert np.array_equal(cache.read(np.arange(len(few))), clean[1])


def test_unusable_manifests_rebuild_the_cache_with_one_line(few, clean, tmp_path, capsys):
    for name, damage in (("v1", lambda m: dict(m, version=1)), ("json", None)):
        root, folder, dpath, mpath = copy_cache(clean, tmp_path / name)
        if damage:
            mpath.write_text(json.dumps(damage(json.loads(mpath.read_text()))))
        else:
            mpath.write_text('{"version": 2, "entr')
        cache, err = rebuild(few, root, capsys)
        line = one_line(err)
        assert ("format version 1" if name == "v1" else "not valid JSON") in line, line
        assert cache.stats["computed"] == cache.stats["repaired"] == len(few)
        assert np.array_equal(cache.read(np.arange(len(few))), clean[1])
        assert json.loads(mpath.read_text())["version"] == data.MANIFEST_VERSION


def test_a_longer_file_is_cut_back_with_one_line(few, clean, tmp_path, capsys):
    root, folder, dpath, _ = copy_cache(clean, tmp_path)
    full = dpath.stat().st_size
    with open(dpath, "ab") as f:
        f.write(b"\1" * 3000)
    cache, err = rebuild(few, root, capsys)
    assert "longer than" in one_line(err) and cache.stats["computed"] == 0
    assert dpath.stat().st_size == full


def test_an_interrupted_recomputation_is_not_reported_as_damage(few, clean, tmp_path, capsys):
    """Rows being recomputed are marked in the manifest before they are written: a build stopped
    between writing such a row and the next checkpoint is resumed without a damage line."""
    root, folder, dpath, mpath = copy_cache(clean, tmp_path)
    m = json.loads(mpath.read_text())
    e = m["entries"][few.keys[9]]
    e["stale"] = True
    mpath.write_text(json.dumps(m))
    row_bytes = dpath.stat().st_size // len(few)
    with open(dpath, "r+b") as f:
        f.seek(e["row"] * row_bytes)
        f.write(bytes(row_bytes))  # half-way through the new features
    cache, err = rebuild(few, root, capsys)
    assert err == "" and cache.stats["computed"] == 1 and cache.stats["repaired"] == 0
    assert np.array_equal(cache.read(np.arange(len(few))), clean[1])


def test_verify_finds_rows_changed_after_opening(few, clean, tmp_path, monkeypatch):
    root, folder, dpath, _ = copy_cache(clean, tmp_path)
    cache = data.build_cache(few, root, workers=1, progress=False)
    assert cache.verify() == len(few) and cache.select(np.arange(10)).verify() == 10
    with open(dpath, "r+b") as f:
        f.seek(int(cache.rows[4]) * 2048 + 10)
        f.write(b"\x11\x22")
    with pytest.raises(data.DataError) as err:
        cache.verify()
    line = one_line(str(err.value))
    assert str(dpath) in line and f"1 of the {len(few)} feature rows" in line
    monkeypatch.setattr(data, "CHECK_CHUNK_ROWS", 4)  # rows far apart: one read each
    assert cache.verify(np.arange(3)) == 3 and cache.verify([0, 30, 47]) == 3
    with pytest.raises(data.DataError):
        cache.verify([0, 4, 30])


def test_non_finite_features_never_reach_the_file(few, tmp_path, monkeypatch):
    real = data.compute_features
    bad = few.paths[7]

    def compute(y, sr, config):
        x = real(y, sr, config)
        if np.allclose(y[:200], data.decode_audio(bad)[0][:200]):
            x[3, 4] = np.inf
        return x

    monkeypatch.setattr(data, "compute_features", compute)
    small = few.select(np.arange(10))
    with pytest.raises(data.DataError, match="NaN or Inf"):
        data.build_cache(small, tmp_path, workers=1, progress=False)
    cache = data.build_cache(small, tmp_path, workers=1, skip_bad=True, progress=False)
    assert cache.rows[7] == -1 and cache.valid.sum() == 9
    m = json.loads((cache.folder / "manifest.json").read_text())
    assert "fhash" not in m["entries"][few.keys[7]]
    assert np.isfinite(np.asarray(cache.data)).all()


# =============================================================================
# metadata that is not UTF-8: one line naming the file and the line

def inject(path, lineno, bad=b"Caf\xe9"):
    lines = path.read_bytes().split(b"\n")
    lines[lineno - 1] = lines[lineno - 1] + bad
    path.write_bytes(b"\n".join(lines))


def check_one_line(load, path, lineno, root, data_name, capsys):
    for skip_bad in (False, True):
        with pytest.raises(data.DataError) as err:
            load(root, skip_bad=skip_bad)
        line = one_line(str(err.value))
        assert f"{path}:{lineno}:" in line and "not UTF-8" in line and "save the file as UTF-8" in line
    capsys.readouterr()
    for extra in ([], ["--skip-bad"]):
        assert data.main(["stats", "--data", data_name, "--root", str(root), *extra]) == 2
        assert f"{path}:{lineno}:" in one_line(capsys.readouterr().err)


def test_non_utf8_audioset_metadata_is_one_line(as_root, tmp_path, capsys):
    for name, lineno in (("audioset_train_strong.tsv", 5), ("audioset_eval_strong.tsv", 2),
                         ("mid_to_display_name.tsv", 3)):
        root = tmp_path / name
        shutil.copytree(as_root, root)
        inject(root / name, lineno)
        check_one_line(data.load_audioset, root / name, lineno, root, "audioset", capsys)


def test_non_utf8_urbansound8k_csv_is_one_line_and_a_bom_is_fine(us8k_root, tmp_path, capsys):
    root = tmp_path / "us8k"
    shutil.copytree(us8k_root, root)
    csv_path = root / "metadata" / "UrbanSound8K.csv"
    original = csv_path.read_bytes()
    inject(csv_path, 4)
    check_one_line(data.load_urbansound8k, csv_path, 4, root, "urbansound8k", capsys)
    csv_path.write_bytes(b"\xef\xbb\xbf" + original)  # 'CSV UTF-8' as spreadsheet programs save it
    assert len(data.load_urbansound8k(root)) == len(data.load_urbansound8k(us8k_root))


def test_non_utf8_speechcommands_lists_are_one_line(gsc_root, tmp_path, capsys):
    for name in ("validation_list.txt", "testing_list.txt"):
        root = tmp_path / name
        shutil.copytree(gsc_root, root)
        with open(root / name, "ab") as f:
            f.write(b"yes/caf\xe9_nohash_0.wav\n")
        lineno = len((root / name).read_bytes().splitlines())
        check_one_line(data.load_speechcommands, root / name, lineno, root, "speechcommands", capsys)


# =============================================================================
# a full disk and a read-only cache folder: one line, no temporary file

def no_leftovers(folder):
    return sorted(p.name for p in Path(folder).rglob("*") if p.name.endswith((".tmp", "lock", ".takeover")))


def test_disk_full_while_allocating_features_is_one_line(few, tmp_path, monkeypatch):
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full, raising=False)
    with pytest.raises(data.DataError) as err:
        data.build_cache(few, tmp_path, workers=1, progress=False)
    line = one_line(str(err.value))
    folder = data.cache_folder(few, tmp_path)
    assert str(folder) in line and "features.f16: No space left on device" in line
    assert no_leftovers(tmp_path) == [] and (folder / "features.f16").stat().st_size == 0
    monkeypatch.undo()
    assert data.build_cache(few, tmp_path, workers=1, progress=False).stats["computed"] == len(few)


def test_disk_full_while_writing_the_manifest_is_one_line(few, tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(data.DataError) as err:
        data.build_cache(few.select(np.arange(5)), tmp_path, workers=1, progress=False)
    assert "No space left on device" in one_line(str(err.value))
    assert no_leftovers(tmp_path) == [] and not any(tmp_path.rglob("manifest.json"))


def test_a_file_size_limit_ends_the_cache_command_with_one_line(gsc_root, tmp_path):
    """The real system calls: RLIMIT_FSIZE makes the allocation fail as a full disk does (EFBIG)."""
    def cache_command():
        import resource
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100000, 100000))
        return data.main(["cache", "--data", "speechcommands", "--root", str(gsc_root), "--cache",
                          str(tmp_path / "cache"), "--workers", "2"])

    p = fork(cache_command, tmp_path / "err")
    p.join(60)
    assert p.exitcode == 2
    line = one_line((tmp_path / "err").read_text())
    assert line.startswith("error: cannot write the feature cache in") and "File too large" in line
    assert no_leftovers(tmp_path) == []


def read_only_folder(monkeypatch, under):
    """What a read-only folder does to os.open, for a test that runs as root (root ignores chmod)."""
    real = os.open

    def fake(path, flags, *a, **kw):
        if str(path).startswith(str(under)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real(path, flags, *a, **kw)

    monkeypatch.setattr(os, "open", fake)


def test_read_only_cache_folder_simulated(few, clean, tmp_path, monkeypatch):
    read_only_folder(monkeypatch, tmp_path)
    with pytest.raises(data.DataError) as err:
        data.build_cache(few, tmp_path / "fresh", workers=1, progress=False)
    line = one_line(str(err.value))
    assert str(data.cache_folder(few, tmp_path / "fresh")) in line and "Permission denied" in line
    assert no_leftovers(tmp_path) == [] and not any((tmp_path / "fresh").rglob("features.f16"))
    root, *_ = copy_cache(clean, tmp_path)  # copied with the builtin open: not through os.open
    cache = data.build_cache(few, root, workers=1, progress=False)  # complete and intact: used as it is
    assert cache.stats["reused"] == len(few) and np.array_equal(cache.read(np.arange(len(few))), clean[1])


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_cache_folder_chmod(few, tmp_path):
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o555)
    try:
        with pytest.raises(data.DataError) as err:
            data.build_cache(few, tmp_path / "ro", workers=1, progress=False)
        assert "Permission denied" in one_line(str(err.value))
    finally:
        os.chmod(tmp_path / "ro", 0o755)


# =============================================================================
# the cache build ends cleanly on SIGTERM and kill -9, and resumes

def fork(fn, err_path):
    """Run fn() in a forked process (no interpreter start-up) whose stdout and stderr, and those of
    its own children, go to err_path; its exit status is fn's return value."""
    def child():
        fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        sys.stdout = sys.stderr = open(2, "w", buffering=1, closefd=False)
        sys.exit(fn())

    p = multiprocessing.get_context("fork").Process(target=child)
    p.start()
    return p


def start_slow_build(gsc_root, tmp_path):
    """The cache command, slowed down, stopped once its two workers have each done a first chunk."""
    mark = tmp_path / "mark"
    mark.mkdir()

    def slow_cache_command():
        real = data.compute_features

        def slow(y, sr, config):
            (mark / f"{os.getpid()}-{time.monotonic_ns()}").touch()
            time.sleep(0.01)
            return real(y, sr, config)

        data.compute_features = slow
        return data.main(["cache", "--data", "speechcommands", "--root", str(gsc_root), "--cache",
                          str(tmp_path / "cache"), "--workers", "2"])

    p = fork(slow_cache_command, tmp_path / "stderr")
    deadline = time.time() + 60
    while len(list(mark.iterdir())) < 32 and p.is_alive() and time.time() < deadline:
        time.sleep(0.01)
    workers = {int(f.name.split("-")[0]) for f in mark.iterdir()} - {p.pid}  # the parent probes once
    assert p.is_alive() and len(workers) == 2
    return p, workers, tmp_path / "stderr"


def gone(pids, timeout=10):
    """Whether the processes have ended (zombies left to a slow init count as ended)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not any(data._pid_alive(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_build_stopped_by_a_signal_leaves_no_tracebacks_and_resumes(gsc, gsc_root, clean, tmp_path, sig):
    p, workers, err_path = start_slow_build(gsc_root, tmp_path)
    os.kill(p.pid, sig)
    p.join(30)
    rc = p.exitcode
    assert gone(workers)  # the pool's workers end with their parent, even after kill -9
    time.sleep(0.2)
    err = err_path.read_text()
    assert "Traceback" not in err and "Error" not in err, err
    if sig == signal.SIGTERM:
        assert rc == 130 and "interrupted; run the same command again" in err
    else:
        assert rc == -signal.SIGKILL
    folder = data.cache_folder(gsc, tmp_path / "cache")
    assert (folder / "lock").exists() == (sig == signal.SIGKILL)  # a dead process's lock: taken over
    cache = data.build_cache(gsc, tmp_path / "cache", workers=1, progress=False)
    assert cache.stats["note"] == "" and cache.stats["computed"] + cache.stats["reused"] == len(gsc)
    if sig == signal.SIGTERM:
        assert cache.stats["reused"] > 0  # the interrupted build checkpointed what it had done
    assert np.array_equal(cache.read(np.arange(len(clean[1]))), clean[1])
    assert no_leftovers(tmp_path / "cache") == []


def test_sigterm_handler_is_installed_only_where_there_is_none(monkeypatch):
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    with data.sigterm_as_interrupt():
        assert signal.getsignal(signal.SIGTERM) is data._raise_interrupt
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL

    def own(signum, frame):
        pass

    monkeypatch.setattr(signal, "getsignal", lambda s: own)  # a caller's own handler is left alone
    with data.sigterm_as_interrupt():
        pass
    monkeypatch.undo()
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


# =============================================================================
# locks: two commands at once do the work once

def lock_line(path):
    return path.read_text() if path.exists() else ""


def run_two_while_locked(lock, fn, tmp_path):
    """Start two processes running fn while `lock` is held, let them go once both wait, and return
    what each printed (their exit status must be 0)."""
    procs = [(fork(fn, tmp_path / f"out{n}"), tmp_path / f"out{n}") for n in range(2)]
    deadline = time.time() + 60
    while not all("waiting for" in lock_line(out) for _, out in procs) and time.time() < deadline:
        time.sleep(0.02)
    lock.release()
    for p, _ in procs:
        p.join(120)
    assert [p.exitcode for p, _ in procs] == [0, 0], [out.read_text() for _, out in procs]
    outs = [out.read_text() for _, out in procs]
    for out in outs:
        assert sum("waiting for" in line for line in out.splitlines()) == 1, out
        assert f"waiting for {lock.path} (process {os.getpid()} on {socket.gethostname()}) ..." in out
    return outs


def test_two_builds_at_once_compute_once(gsc, gsc_root, tmp_path):
    folder = data.cache_folder(gsc, tmp_path)
    folder.mkdir(parents=True)
    lock = data.FolderLock(folder).acquire()

    def build():
        ds = data.load_dataset("speechcommands", gsc_root)
        c = data.build_cache(ds, tmp_path, workers=1, progress=False)
        print(json.dumps(dict(computed=c.stats["computed"], reused=c.stats["reused"],
                              h=hashlib.sha1(c.read(range(len(ds))).tobytes()).hexdigest())))
        return 0

    out = [json.loads(o.splitlines()[-1]) for o in run_two_while_locked(lock, build, tmp_path)]
    n = len(gsc)
    assert sorted((o["computed"], o["reused"]) for o in out) == [(0, n), (n, 0)]
    assert out[0]["h"] == out[1]["h"]


def test_two_ensure_synth_at_once_generate_once(tmp_path):
    root = tmp_path / "synth-speechcommands"
    root.mkdir()
    lock = data.FolderLock(root).acquire()

    def make():
        data.ensure_synth("speechcommands", root, speakers=2, max_reps=1, noise_seconds=0.5)
        return 0

    out = run_two_while_locked(lock, make, tmp_path)
    assert sum("generating the synthetic speechcommands dataset" in o for o in out) == 1
    assert json.loads((root / "synth.json").read_text())["speakers"] == 2 and not (root / "lock").exists()
    assert len(data.load_dataset("speechcommands", root)) > 0
    assert data.ensure_synth("speechcommands", root, speakers=2, progress=False) == root  # found, not made
    with pytest.raises(data.DataError, match="other settings"):
        data.ensure_synth("speechcommands", root, speakers=3, progress=False)


def test_ensure_synth_redoes_a_generation_that_did_not_finish(tmp_path):
    root = tmp_path / "as"
    (root / "train").mkdir(parents=True)
    (root / "train" / "Yhalf_0.wav").write_bytes(b"RIFF")  # a killed generation: no synth.json
    data.ensure_synth("audioset", root, n_train=20, n_eval=8, seconds=0.5, progress=False)
    ds = data.load_dataset("audioset", root)
    assert ds.synthetic["n_train"] == 20 and "train/half_0" not in ds.keys


def test_stale_empty_lock_is_taken_over_after_the_timeout(tmp_path):
    (tmp_path / "lock").write_bytes(b"")  # its writer died between creating and writing it
    said = []
    t0 = time.time()
    with data.FolderLock(tmp_path, stale_after=0.3, poll=0.05, say=said.append) as lock:
        waited = time.time() - t0
        assert lock.path.read_text().split() == [socket.gethostname(), str(os.getpid())]
    assert 0.15 < waited < 10 and not (tmp_path / "lock").exists()
    assert len(said) == 1 and str(tmp_path / "lock") in said[0] and "empty or unreadable" in said[0]


def test_lock_of_a_dead_process_is_taken_over_at_once(tmp_path):
    p = multiprocessing.get_context("fork").Process(target=lambda: None)
    p.start()
    p.join()
    dead = p.pid
    (tmp_path / "lock").write_text(f"{socket.gethostname()} {dead}\n")
    said = []
    t0 = time.time()
    with data.FolderLock(tmp_path, say=said.append) as lock:
        assert time.time() - t0 < 1.0 and said == [] and lock.held
    assert not (tmp_path / "lock").exists()


def test_busy_lock_without_waiting_names_its_holder(tmp_path):
    (tmp_path / "lock").write_text(f"{socket.gethostname()} {os.getpid()}\n")
    with pytest.raises(data.LockBusy, match=f"process {os.getpid()} on {socket.gethostname()}"):
        data.FolderLock(tmp_path, wait=False).acquire()
    (tmp_path / "lock").write_text("otherhost 123\n")
    with pytest.raises(data.LockBusy, match="delete the file if that process no longer runs"):
        data.FolderLock(tmp_path, wait=False).acquire()
    assert (tmp_path / "lock").read_text() == "otherhost 123\n"  # not ours: never deleted
