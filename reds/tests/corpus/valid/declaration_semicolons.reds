// dialect: 1.0
// `;` after class, struct and enum bodies (1.0).
public class Semi {
  public let x: Int32;
};

public struct SemiPoint {
  public let y: Int32;
};

enum SemiEnum {
  A = 0
};
