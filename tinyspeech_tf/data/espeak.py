"""espeak-ng from PyPI: the library and voice data of the ``espeakng-loader`` wheel, called in
process through ctypes.

Why: the Debian ``espeak-ng`` package needs root, and a subprocess per clip costs more than the
speech itself; the wheel needs neither, so ``make train`` works on a machine where only pip
works, and every machine speaks with the same engine version (the synthetic set is a function
of it). The command-line ``espeak-ng`` is used only when the wheel is not installed.

Determinism: the library keeps state from one utterance to the next (gain control, flutter,
its random generator), so the same call twice gives different audio. A clip must be a function
of its own parameters (resume and regeneration rely on it), so each is spoken in a fork of a
worker whose library is initialised but has never spoken (:func:`speak_isolated`), with the
random seed set per clip. A fork costs about a millisecond; a subprocess per clip, as the
command needs, costs ten.
"""

from __future__ import annotations

import ctypes
import io
import os
import shutil
import subprocess
import wave

import numpy as np

from tinyspeech_tf.errors import UserError

# espeak_AUDIO_OUTPUT, espeak_PARAMETER and espeakINITIALIZE_* of speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_RATE, _VOLUME, _PITCH = 1, 2, 3
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.c_void_p)
INSTALL_HINT = ("install the espeak-ng wheel (`pip install espeakng-loader`; `make install` "
                "does) or give a real dataset folder instead of synthesising one")


class Library:
    """libespeak-ng of the ``espeakng-loader`` wheel, initialised once per process (the
    library keeps global state, so calls must not run in parallel threads)."""

    def __init__(self) -> None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
                                          ctypes.c_int]
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint,
                                     ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
                                     ctypes.c_void_p, ctypes.c_void_p]
        # The data folder's parent: espeak-ng looks for espeak-ng-data inside it.
        root = os.path.dirname(espeakng_loader.get_data_path())
        self.rate = int(lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, root.encode(),
                                              _INITIALIZE_DONT_EXIT))
        if self.rate <= 0:
            raise UserError(f"espeak-ng (espeakng-loader) failed to start with its data in "
                            f"{root}; reinstall it (`pip install --force-reinstall "
                            "espeakng-loader`)")
        self.version = f"espeak-ng {lib.espeak_Info(None).decode()} (espeakng-loader)"
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._collect)  # referenced, or ctypes frees it
        lib.espeak_SetSynthCallback(self._callback)
        self._lib = lib

    def _collect(self, wav, count: int, _events) -> int:
        if wav and count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0

    def speak(self, text: str, voice: str, rate: int, pitch: int, amplitude: int,
              seed: int = 0) -> np.ndarray:
        """int16 samples at :attr:`rate` of ``text`` in ``voice`` (e.g. ``en-us+f3``); the
        same only in a library that has not spoken before (see :func:`speak_isolated`)."""
        self._lib.espeak_ng_SetRandSeed(int(seed))
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise UserError(f"espeak-ng has no voice {voice!r}; check the voices of "
                            "espeakng-loader's espeak-ng-data")
        for parameter, value in ((_RATE, rate), (_PITCH, pitch), (_VOLUME, amplitude)):
            self._lib.espeak_SetParameter(parameter, int(value), 0)
        self._chunks = []
        data = text.encode()
        if self._lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, 0, None, None) != 0:
            raise UserError(f"espeak-ng failed to speak {text!r} in voice {voice!r}")
        return (np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16))


class Command:
    """The ``espeak-ng`` program on PATH: one subprocess per clip (threads may run several)."""

    def __init__(self, exe: str) -> None:
        self.exe = exe
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
        first = out.stdout.strip().splitlines()[0] if out.stdout.strip() else "espeak-ng"
        self.version = f"{first} (command)"
        self.rate = 22050

    def speak(self, text: str, voice: str, rate: int, pitch: int, amplitude: int,
              seed: int = 0) -> np.ndarray:
        del seed  # each call is a new process: the command has no state to carry
        cmd = [self.exe, "-v", voice, "-s", str(rate), "-p", str(pitch), "-a", str(amplitude),
               "--stdout", text]
        proc = subprocess.run(cmd, capture_output=True, check=False)
        if proc.returncode != 0 or len(proc.stdout) < 44:
            err = proc.stderr.decode(errors="replace").strip()[:160]
            raise UserError(f"espeak-ng failed for voice {voice} text {text!r} ({err}); "
                            "check `espeak-ng --voices=en`")
        with wave.open(io.BytesIO(proc.stdout), "rb") as w:
            self.rate = w.getframerate()
            raw = w.readframes(1 << 30)  # --stdout headers claim a huge length
        return np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2").copy()


_engine: Library | Command | None = None


def engine() -> Library | Command:
    """This process's espeak-ng: the wheel's library, else the command, else a UserError."""
    global _engine
    if _engine is None:
        try:
            _engine = Library()
        except ImportError:
            exe = shutil.which("espeak-ng")
            if exe is None:
                raise UserError(f"espeak-ng is not available; {INSTALL_HINT}") from None
            _engine = Command(exe)
        except OSError as err:
            raise UserError(f"espeak-ng (espeakng-loader) cannot be loaded ({err}); "
                            f"{INSTALL_HINT}") from None
    return _engine


def start_worker() -> None:
    """Pool initialiser: load and initialise the library once, before any fork."""
    engine()


def speak_isolated(params: tuple | None) -> tuple[np.ndarray, int] | None:
    """(int16 samples, rate) of ``params`` = (text, voice, rate, pitch, amplitude, seed),
    spoken in a fork of this process so that no earlier utterance leaves its state (None
    passes through: a clip without speech). Without fork (Windows) it speaks in process."""
    if params is None:
        return None
    speaker = engine()
    if not hasattr(os, "fork") or isinstance(speaker, Command):
        return speaker.speak(*params), speaker.rate
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: speak, send, exit without running any cleanup of the parent's
        code = 1
        try:
            os.close(read_end)
            data = speaker.speak(*params).tobytes()
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(data)
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise UserError(f"espeak-ng failed to speak {params[0]!r} in voice {params[1]!r}; "
                        "check the voice name")
    return np.frombuffer(data, dtype=np.int16), speaker.rate
