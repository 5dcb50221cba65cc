// refused: one base class
public class C extends A, B {}
