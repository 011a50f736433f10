// WAL positions [behind, ahead], each across a change of width or of digit (9 -> A): compared
// as text, half of them come out the wrong way round. Shared by the tests of every place that
// orders positions (parseLsn in the read router, the watermark's script in Redis).
export const LSN_BOUNDARY_PAIRS: readonly [behind: string, ahead: string][] = [
  ["0/FFFFFFFF", "1/0"],
  ["0/FFFFFFF", "0/10000000"],
  ["0/9", "0/A"],
  ["9/FFFFFFFF", "A/0"],
  ["9/0", "10/0"],
  ["F/FFFFFFFF", "10/0"],
  ["0/9FFFFFF8", "0/A0000000"],
  ["0/F", "0/10"],
];
