/// Upcasts of half-precision storage formats to Float.
enum HalfPrecision {
    static func float16(_ bits: UInt16) -> Float { Float(Float16(bitPattern: bits)) }
    static func bfloat16(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }
}
