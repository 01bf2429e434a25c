"""Image conversion: the builtin path always, cv_bridge against it wherever cv_bridge imports.

References come from OpenCV's own decode (cv2.imdecode, BGR by OpenCV's documentation) and from
sensor_msgs/Image's documented layout (row-major, `step` bytes per row), not from our code.
"""
from __future__ import annotations

import sys
import types

import cv2
import numpy as np
import pytest

from asyncvla_common.image_conversion import (BUILTIN, CV_BRIDGE, BackendMismatch, ImageConverter,
                                              builtin_compressed_to_rgb, builtin_raw_to_rgb,
                                              builtin_rgb_to_image)


@pytest.fixture
def rgb() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, (37, 53, 3), dtype=np.uint8)


def _encode(bgr: np.ndarray, ext: str) -> bytes:
    ok, buf = cv2.imencode(ext, bgr)
    assert ok
    return buf.tobytes()


def test_builtin_raw_encodings_match_the_source_pixels(rgb):
    h, w, _ = rgb.shape
    assert np.array_equal(builtin_raw_to_rgb("rgb8", w, h, rgb.tobytes()), rgb)
    assert np.array_equal(builtin_raw_to_rgb("bgr8", w, h, rgb[:, :, ::-1].tobytes()), rgb)
    grey = rgb[:, :, 1].copy()
    assert np.array_equal(builtin_raw_to_rgb("mono8", w, h, grey.tobytes()),
                          np.repeat(grey[:, :, None], 3, axis=2))


def test_builtin_raw_honours_padded_rows(rgb):
    h, w, _ = rgb.shape
    step = w * 3 + 5  # sensor_msgs/Image: each row is `step` bytes, padding after the pixels
    padded = np.full((h, step), 0xAB, np.uint8)
    padded[:, :w * 3] = rgb.reshape(h, w * 3)
    assert np.array_equal(builtin_raw_to_rgb("rgb8", w, h, padded.tobytes(), step), rgb)


@pytest.mark.parametrize("ext, fmt", [(".jpg", "jpeg"), (".png", "png")])
def test_builtin_compressed_matches_opencv_decode(rgb, ext, fmt):
    data = _encode(rgb[:, :, ::-1], ext)
    reference = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    out = builtin_compressed_to_rgb(data, fmt)
    assert out.dtype == np.uint8 and out.shape == rgb.shape
    assert np.array_equal(out, reference)
    if fmt == "png":  # lossless: the source pixels themselves
        assert np.array_equal(out, rgb)


def test_builtin_compressed_grey_and_alpha_png_become_rgb(rgb):
    grey = rgb[:, :, 0].copy()
    out = builtin_compressed_to_rgb(_encode(grey, ".png"), "png")
    assert np.array_equal(out, np.repeat(grey[:, :, None], 3, axis=2))
    bgra = np.dstack([rgb[:, :, ::-1], np.full(grey.shape, 9, np.uint8)])
    assert np.array_equal(builtin_compressed_to_rgb(_encode(bgra, ".png"), "png"), rgb)


@pytest.mark.parametrize("call, match", [
    (lambda: builtin_compressed_to_rgb(b"", "jpeg"), "undecodable jpeg image \\(0 bytes\\)"),
    (lambda: builtin_compressed_to_rgb(b"\xff\xd8 garbage", "jpeg"), "undecodable jpeg"),
    (lambda: builtin_raw_to_rgb("rgb8", 4, 4, b"\x00" * 10), "needs 48 bytes, got 10"),
    (lambda: builtin_raw_to_rgb("rgb8", 4, 4, b"\x00" * 48, step=8), "step 8"),
    (lambda: builtin_raw_to_rgb("yuv422", 1, 1, b"\x00\x00"), "unsupported image encoding"),
    (lambda: builtin_raw_to_rgb("mono8", 0, 3, b""), "0x3 mono8"),
])
def test_builtin_refuses_bad_input_with_the_cause(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_builtin_rgb_to_image_has_the_documented_layout(rgb):
    msg = builtin_rgb_to_image(rgb)
    h, w, _ = rgb.shape
    assert (msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian) == ("rgb8", h, w,
                                                                                 3 * w, 0)
    assert bytes(msg.data) == rgb.tobytes()
    back = builtin_raw_to_rgb(msg.encoding, msg.width, msg.height, bytes(msg.data), msg.step)
    assert np.array_equal(back, rgb)
    with pytest.raises(ValueError, match="RGB uint8"):
        builtin_rgb_to_image(rgb[:, :, 0])


def test_converter_without_cv_bridge_is_builtin_and_says_why(rgb, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv_bridge", None)  # what Python does for a missing module
    conv = ImageConverter()
    assert conv.backend == BUILTIN and "cv_bridge not importable" in conv.reason
    h, w, _ = rgb.shape
    assert np.array_equal(conv.raw_to_rgb("bgr8", w, h, rgb[:, :, ::-1].tobytes()), rgb)
    assert np.array_equal(conv.compressed_to_rgb(_encode(rgb[:, :, ::-1], ".png"), "png"), rgb)
    assert bytes(conv.rgb_to_image(rgb).data) == rgb.tobytes()
    assert ImageConverter(use_cv_bridge=False).backend == BUILTIN


def _pypi_like_cv_bridge() -> types.ModuleType:
    """A cv_bridge that imports and then fails on first use, as PyPI's cv-bridge 1.13.0.post0
    does under numpy 2: its cv2_to_imgmsg calls `ndarray.tostring()`, which numpy 2 removed
    (that failing line is reproduced; the rest converts correctly)."""
    module = types.ModuleType("cv_bridge")

    class CvBridge:
        def imgmsg_to_cv2(self, msg, desired_encoding="passthrough"):
            return builtin_raw_to_rgb(msg.encoding, msg.width, msg.height, bytes(msg.data),
                                      msg.step)

        def compressed_imgmsg_to_cv2(self, msg, desired_encoding="passthrough"):
            return builtin_compressed_to_rgb(bytes(msg.data), msg.format)

        def cv2_to_imgmsg(self, cvim, encoding="passthrough"):
            msg = builtin_rgb_to_image(cvim)
            msg.data = cvim.tostring()  # AttributeError under numpy 2
            return msg

    module.CvBridge = CvBridge
    return module


@pytest.mark.skipif(hasattr(np.ndarray, "tostring"), reason="numpy < 2 still has tostring")
def test_cv_bridge_failing_at_first_use_falls_back_with_one_warning(rgb, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv_bridge", _pypi_like_cv_bridge())
    warnings: list[str] = []
    conv = ImageConverter(warn=warnings.append)
    h, w, _ = rgb.shape
    for _ in range(3):
        assert np.array_equal(conv.raw_to_rgb("rgb8", w, h, rgb.tobytes()), rgb)
        assert bytes(conv.rgb_to_image(rgb).data) == rgb.tobytes()
    assert conv.backend == BUILTIN and isinstance(conv.probe_error, AttributeError)
    assert len(warnings) == 1 and "tostring" in warnings[0] and "builtin" in warnings[0]


def test_cv_bridge_with_other_pixels_is_not_used(rgb, monkeypatch):
    module = _pypi_like_cv_bridge()
    swapped = module.CvBridge.imgmsg_to_cv2
    module.CvBridge.imgmsg_to_cv2 = lambda self, msg, desired_encoding="": \
        swapped(self, msg)[:, :, ::-1]  # a bridge that returns BGR when asked for RGB
    monkeypatch.setitem(sys.modules, "cv_bridge", module)
    conv = ImageConverter(warn=lambda line: None)
    assert conv.backend == BUILTIN and isinstance(conv.probe_error, BackendMismatch)


def _cut_scan_jpeg(rgb: np.ndarray) -> bytes:
    """A JPEG whose scan is cut short and closed with EOI (a frame cut in transit, re-closed)."""
    jpeg = _encode(rgb[:, :, ::-1], ".jpg")
    sos = jpeg.index(b"\xff\xda")
    return jpeg[:sos + 30] + b"\xff\xd9"


def test_corrupted_jpeg_is_refused_where_opencv_returns_a_grey_filled_image(rgb):
    bad = _cut_scan_jpeg(rgb)
    filled = cv2.imdecode(np.frombuffer(bad, np.uint8), cv2.IMREAD_COLOR)
    assert filled is not None and filled.shape == rgb.shape  # OpenCV alone accepts it
    with pytest.raises(ValueError, match="corrupted or undecodable jpeg image .*premature end"):
        builtin_compressed_to_rgb(bad, "jpeg")


def test_converter_refuses_a_corrupted_jpeg_even_with_a_working_cv_bridge(rgb, monkeypatch):
    """cv_bridge's compressed decode is OpenCV's (grey-filled, no error): JPEG bypasses it."""
    module = types.ModuleType("cv_bridge")

    class CvBridge:  # a working cv_bridge: converts like the builtin code, decodes with OpenCV
        def imgmsg_to_cv2(self, msg, desired_encoding="passthrough"):
            return builtin_raw_to_rgb(msg.encoding, msg.width, msg.height, bytes(msg.data),
                                      msg.step)

        def compressed_imgmsg_to_cv2(self, msg, desired_encoding="passthrough"):
            bgr = cv2.imdecode(np.frombuffer(bytes(msg.data), np.uint8), cv2.IMREAD_COLOR)
            return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

        def cv2_to_imgmsg(self, cvim, encoding="passthrough"):
            return builtin_rgb_to_image(cvim)

    module.CvBridge = CvBridge
    monkeypatch.setitem(sys.modules, "cv_bridge", module)
    conv = ImageConverter(warn=lambda line: None)
    assert conv.backend == CV_BRIDGE
    good = _encode(rgb[:, :, ::-1], ".jpg")
    assert np.array_equal(conv.compressed_to_rgb(good, "jpeg"), builtin_compressed_to_rgb(good))
    with pytest.raises(ValueError, match="corrupted or undecodable jpeg"):
        conv.compressed_to_rgb(_cut_scan_jpeg(rgb), "jpeg")


# --- the real cv_bridge, wherever it imports --------------------------------------------------
def _real_cv_bridge_or_skip():
    try:
        from cv_bridge import CvBridge
    except ImportError as exc:
        pytest.skip(f"cv_bridge is not importable here ({exc}); it comes with ROS from apt "
                    "(ros-<distro>-cv-bridge); PyPI's cv-bridge 1.13.0.post0 imports but fails "
                    "on first use with numpy 2, so it is not installed and the nodes use the "
                    "builtin conversion")
    conv = ImageConverter(warn=lambda line: None)
    if conv.backend != CV_BRIDGE:
        if isinstance(conv.probe_error, BackendMismatch):
            pytest.fail(f"cv_bridge converts differently from the builtin: {conv.reason}")
        pytest.skip(f"cv_bridge imports but is unusable here, so the nodes use the builtin "
                    f"conversion: {conv.reason}")
    return CvBridge(), conv


def test_cv_bridge_agrees_with_builtin(rgb):
    bridge, conv = _real_cv_bridge_or_skip()
    from sensor_msgs.msg import CompressedImage, Image

    h, w, _ = rgb.shape
    sources = {"rgb8": rgb, "bgr8": rgb[:, :, ::-1].copy(), "mono8": rgb[:, :, :1].copy()}
    for encoding, pixels in sources.items():
        msg = Image(encoding=encoding, width=w, height=h, step=w * pixels.shape[2],
                    data=pixels.tobytes())
        want = builtin_raw_to_rgb(encoding, w, h, pixels.tobytes())
        assert np.array_equal(bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8"), want), encoding
        assert np.array_equal(conv.raw_to_rgb(encoding, w, h, pixels.tobytes()), want), encoding
    for ext, fmt in ((".jpg", "jpeg"), (".png", "png")):
        data = _encode(rgb[:, :, ::-1], ext)
        got = bridge.compressed_imgmsg_to_cv2(CompressedImage(format=fmt, data=data),
                                              desired_encoding="rgb8")
        assert np.array_equal(got, builtin_compressed_to_rgb(data, fmt)), fmt
    made, want = bridge.cv2_to_imgmsg(rgb, encoding="rgb8"), builtin_rgb_to_image(rgb)
    assert (made.encoding, made.width, made.height, made.step, bytes(made.data)) == (
        want.encoding, want.width, want.height, want.step, bytes(want.data))
    assert conv.frame_fallbacks == 0
