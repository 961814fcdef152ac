/**
 * Colormap data. Anchors are [position in 0..255, r, g, b] with r, g, b in 0..1; tables are
 * built by linear interpolation between anchors (see colormap.ts).
 */

/** An anchor `[index 0..255, r, g, b]` of a 256-entry colormap. */
export type ColormapAnchor = readonly [number, number, number, number];

/**
 * Viridis: every 8th entry (and the last) of the 256-entry `_viridis_data` table published with
 * matplotlib by Nathaniel Smith, Stefan van der Walt and Eric Firing (mpl-colormaps, CC0).
 * Linear interpolation between these 33 anchors stays within 0.001 of the full table
 * (checked in test/analysis/colormap.test.ts against the full published table).
 */
export const VIRIDIS_ANCHORS: readonly ColormapAnchor[] = [
  [0, 0.267004, 0.004874, 0.329415],
  [8, 0.277018, 0.050344, 0.375715],
  [16, 0.282327, 0.094955, 0.417331],
  [24, 0.282884, 0.13592, 0.453427],
  [32, 0.278826, 0.17549, 0.483397],
  [40, 0.270595, 0.214069, 0.507052],
  [48, 0.258965, 0.251537, 0.524736],
  [56, 0.244972, 0.287675, 0.53726],
  [64, 0.229739, 0.322361, 0.545706],
  [72, 0.214298, 0.355619, 0.551184],
  [80, 0.19943, 0.387607, 0.554642],
  [88, 0.185556, 0.41857, 0.556753],
  [96, 0.172719, 0.448791, 0.557885],
  [104, 0.160665, 0.47854, 0.558115],
  [112, 0.149039, 0.508051, 0.55725],
  [120, 0.13777, 0.537492, 0.554906],
  [128, 0.127568, 0.566949, 0.550556],
  [136, 0.120565, 0.596422, 0.543611],
  [144, 0.120638, 0.625828, 0.533488],
  [152, 0.132268, 0.655014, 0.519661],
  [160, 0.157851, 0.683765, 0.501686],
  [168, 0.196571, 0.711827, 0.479221],
  [176, 0.24607, 0.73891, 0.452024],
  [184, 0.304148, 0.764704, 0.419943],
  [192, 0.369214, 0.788888, 0.382914],
  [200, 0.440137, 0.811138, 0.340967],
  [208, 0.515992, 0.831158, 0.294279],
  [216, 0.595839, 0.848717, 0.243329],
  [224, 0.678489, 0.863742, 0.189503],
  [232, 0.762373, 0.876424, 0.137064],
  [240, 0.845561, 0.887322, 0.099702],
  [248, 0.926106, 0.89733, 0.104071],
  [255, 0.993248, 0.906157, 0.143936],
];

/** A piecewise-linear channel: `[x in 0..1, value]` points, x ascending (matplotlib segment data). */
export type Segments = readonly (readonly [number, number])[];

/**
 * matplotlib's 'hot' (black, red, yellow, white) as published in its `_hot_data` segment
 * data: red rises from 0.0416 at 0 to 1 at 0.365079, green from 0 at 0.365079 to 1 at 0.746032,
 * blue from 0 at 0.746032 to 1 at 1.
 */
export const HOT_SEGMENTS: { r: Segments; g: Segments; b: Segments } = {
  r: [
    [0, 0.0416],
    [0.365079, 1],
    [1, 1],
  ],
  g: [
    [0, 0],
    [0.365079, 0],
    [0.746032, 1],
    [1, 1],
  ],
  b: [
    [0, 0],
    [0.746032, 0],
    [1, 1],
  ],
};

/** matplotlib's 'jet' (dark blue, blue, cyan, yellow, red, dark red) from its `_jet_data` segments. */
export const JET_SEGMENTS: { r: Segments; g: Segments; b: Segments } = {
  r: [
    [0, 0],
    [0.35, 0],
    [0.66, 1],
    [0.89, 1],
    [1, 0.5],
  ],
  g: [
    [0, 0],
    [0.125, 0],
    [0.375, 1],
    [0.64, 1],
    [0.91, 0],
    [1, 0],
  ],
  b: [
    [0, 0.5],
    [0.11, 1],
    [0.34, 1],
    [0.65, 0],
    [1, 0],
  ],
};
