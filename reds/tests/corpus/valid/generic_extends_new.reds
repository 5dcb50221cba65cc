// dialect: 1.0
// Generic types after `extends` and `new` (1.0).
public class Box<T> {
  public let value: T;
}

public class IntBox extends Box<Int32> {}

public func MakeBox() -> ref<Box<Int32>> {
  return new Box<Int32>();
}
