// refused: `[T; N]` needs N
public class C {
  let a: [Int32;];
}
