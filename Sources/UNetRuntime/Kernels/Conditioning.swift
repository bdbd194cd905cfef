import Foundation
import UNetIR

/// Sinusoidal timestep embedding and the Lab to RGB conversion used by colorization heads.
enum ConditioningKernel {
    static func timestepEmbedding(_ t: TimestepEmbedding, x: Tensor, out: Tensor) {
        let half = t.dim / 2
        let batch = out.shape[0]
        for b in 0..<batch {
            let time = Double(x.data[b])
            let dst = out.data + b * t.dim
            for i in 0..<half {
                let exponent = -log(t.maxPeriod) * Double(i) / (Double(half) - t.freqShift)
                // diffusers computes the frequencies and the product in float32.
                let frequency = Float(exp(exponent))
                let argument = Float(time) * frequency
                let (s, c) = (sinf(argument), cosf(argument))
                if t.flipSinToCos {
                    dst[i] = c
                    dst[half + i] = s
                } else {
                    dst[i] = s
                    dst[half + i] = c
                }
            }
        }
    }

    static func labToRGB(x: Tensor, out: Tensor) {
        let plane = x.shape[2] * x.shape[3]
        let m: [Float] = [3.2404542, -1.5371385, -0.4985314, -0.9692660, 1.8760108, 0.0415560, 0.0556434, -0.2040259, 1.0572252]
        func inverse(_ t: Float) -> Float {
            let delta: Float = 6.0 / 29.0
            return t > delta ? t * t * t : 3 * delta * delta * (t - 4.0 / 29.0)
        }
        func gamma(_ c: Float) -> Float {
            let v = min(max(c, 0), 1)
            return v <= 0.0031308 ? 12.92 * v : 1.055 * powf(v, 1 / 2.4) - 0.055
        }
        for b in 0..<x.shape[0] {
            let l = x.data + b * 3 * plane, a = l + plane, bb = a + plane
            let r = out.data + b * 3 * plane, g = r + plane, bl = g + plane
            for i in 0..<plane {
                let fy = (l[i] + 16) / 116
                let fx = fy + a[i] / 500
                let fz = fy - bb[i] / 200
                let X = 0.95047 * inverse(fx), Y = inverse(fy), Z = 1.08883 * inverse(fz)
                r[i] = gamma(m[0] * X + m[1] * Y + m[2] * Z)
                g[i] = gamma(m[3] * X + m[4] * Y + m[5] * Z)
                bl[i] = gamma(m[6] * X + m[7] * Y + m[8] * Z)
            }
        }
    }
}
