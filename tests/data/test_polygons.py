"""The one polygon area and clipper (data.polygons) give what the copies they replaced gave.

Expected values were computed with the former ``data._geometry._clip_polygon`` / ``_polygon_area`` (synthetic
generator), ``data.dota._clipped_area`` (DOTA window split) and ``data._output.polygon_area`` (converters,
scorer) on the same hand-made polygons.
"""

from __future__ import annotations

import numpy as np
import pytest

from admd_deploy.data.polygons import clip_polygon, clipped_area, polygon_area

POLYGONS = {  # name: (polygon, area inside (0, 0, 10, 8), area inside (2, 1, 7, 6), clipped to (0, 0, 10, 8))
    "square across the right edge": ([(8, 2), (14, 2), (14, 6), (8, 6)], 8.0, 0.0,
                                     [[8, 2], [10, 2], [10, 6], [8, 6]]),
    "diamond on the corner": ([(0, -5), (5, 0), (0, 5), (-5, 0)], 12.5, 2.0,
                              [[0, 0], [5, 0], [5, 0], [0, 5], [0, 5]]),
    "rotated rectangle": ([(1.5, -2.0), (9.2, 3.1), (6.0, 7.9), (-1.7, 2.8)], 45.80248090145149, 24.26412783295136,
                          [[0, 0.25], [0.166667, 0], [4.519608, 0], [9.2, 3.1], [6, 7.9], [0, 3.925974]]),
    "triangle inside": ([(1, 1), (5, 1), (3, 4)], 6.0, 5.25, [[1, 1], [5, 1], [3, 4]]),
    "triangle outside": ([(20, 20), (25, 20), (25, 25)], 0.0, 0.0, []),
}


@pytest.mark.parametrize("name", list(POLYGONS))
def test_the_clipper_and_area_give_the_former_results_on_hand_made_polygons(name):
    poly, area_image, area_window, clipped = POLYGONS[name]
    poly = np.array(poly, dtype=np.float64)
    assert clipped_area(poly, (0, 0, 10, 8)) == pytest.approx(area_image, rel=1e-12, abs=1e-12)
    assert clipped_area(poly, (2, 1, 7, 6)) == pytest.approx(area_window, rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(clip_polygon(poly, (0, 0, 10, 8)), np.array(clipped, dtype=np.float64).reshape(-1, 2),
                               atol=1e-6)


def test_crossing_points_lie_exactly_on_the_box_edges():
    clipped = clip_polygon(np.array([(1.5, -2.0), (9.2, 3.1), (6.0, 7.9), (-1.7, 2.8)]), (0, 0, 10, 8))
    on_edge = (clipped[:, 0] == 0) | (clipped[:, 1] == 0)
    assert on_edge.sum() == 4  # the two cuts, two points each, with no rounding off the edge


def test_the_area_of_one_polygon_and_of_a_batch_agree():
    a = np.array([(0, 0), (4, 0), (4, 3), (0, 3)], dtype=np.float64)
    b = np.array([(0, 0), (2, 0), (0, 2), (0, 0)], dtype=np.float64)  # a triangle with a repeated corner
    assert polygon_area(a) == 12.0 and polygon_area(b) == 2.0
    np.testing.assert_array_equal(polygon_area(np.stack([a, b])), [12.0, 2.0])
    assert polygon_area(a[:2]) == 0.0 and polygon_area(np.zeros((0, 2))) == 0.0  # fewer than 3 points
