// dialect: 1.0
// The 1.0 array type spellings `[T]` and `[T; N]`.
public func Sum(xs: [Int32]) -> Int32 {
  let total = 0;
  for x in xs {
    total += x;
  }
  return total;
}

public class Grid {
  private let m_cells: [Float; 16];
  private let m_rows: [[String]];
}
