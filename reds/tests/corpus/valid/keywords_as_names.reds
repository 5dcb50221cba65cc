// dialect: both
// Words that are keywords elsewhere serve as names where both compilers
// expect a name.
public class Keywords {
  public let class: Int32;
  public let switch: Int32;
  public let module: String;
  public let enum: Bool;

  public func Use(in: Int32, new: Int32) -> Int32 {
    let func = in + new;
    let while = 0;
    while = while + this.class;
    return func + this.switch + while;
  }
}
