// dialect: 0.5
// 0.5.x takes qualifiers in any order; 1.0 wants the visibility first.
public class Order {
  static public func Make() -> Int32 {
    return 1;
  }
}
