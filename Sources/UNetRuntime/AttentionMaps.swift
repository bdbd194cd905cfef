/// Post-processing of captured attention probabilities.
public enum AttentionMaps {
    /// `[B, heads, N, M]` averaged over heads to `[B, N, M]`.
    public static func headAverage(_ p: Tensor) -> Tensor {
        let (b, h, n, m) = (p.shape[0], p.shape[1], p.shape[2], p.shape[3])
        let out = Tensor(zeros: [b, n, m])
        for i in 0..<b {
            for head in 0..<h {
                let src = p.data + (i * h + head) * n * m
                let dst = out.data + i * n * m
                for j in 0..<(n * m) { dst[j] += src[j] }
            }
            for j in 0..<(n * m) { out.data[i * n * m + j] /= Float(h) }
        }
        return out
    }
}
