// refused: fields need a type
public class C {
  public let x = 1;
}
