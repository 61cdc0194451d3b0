package archive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/klauspost/reedsolomon"
)

// ErrLost is wrapped by errors about data that cannot be recovered: more
// shards of a block lost or corrupted than there is parity, or a block or
// log segment missing.
var ErrLost = errors.New("archive: data lost")

// Shard files. A block's bytes are cut into K data shards of equal length
// S (the last zero-padded) and M parity shards are computed from them with
// Reed-Solomon (klauspost/reedsolomon). Shard i lives in directory i as
// blocks/<id as 16 hex digits>.<i>.shard:
//
//	offset 0  "RWNDSHD1"
//	offset 8  uint32 version (1)
//	offset 12 uint8 K, uint8 M, uint16 shard index
//	offset 16 uint64 block id
//	offset 24 uint64 L, the block's length
//	offset 32 uint64 S, the shard's data length
//	offset 40 uint32 C, the chunk size
//	offset 44 uint32 n = ceil(S/C), the chunk count
//	offset 48 uint32 CRC-32C of bytes 0..48 and of the table
//	offset 52 uint32 0
//	offset 56 the table: n × uint32, CRC-32C of each chunk of the data
//	then zero padding to a multiple of 8, then the S data bytes
//
// The checksums sit apart from the data they check. Reed-Solomon works
// byte-column by byte-column across the shards, so each chunk index is
// recovered on its own: a chunk whose checksum fails counts as missing for
// that stripe only, and a block survives any M bad chunks per stripe.
const (
	shardMagic   = "RWNDSHD1"
	shardVersion = 1
	shardHdrLen  = 56
	// DefaultChunk is the checksummed unit of a shard.
	DefaultChunk = 64 << 10
)

type shardHeader struct {
	k, m      int
	index     int
	id        uint64
	blockLen  uint64
	shardLen  uint64
	chunk     uint32
	chunks    uint32
	dataStart int
}

// shardCodec cuts blocks into shards and puts them back together.
type shardCodec struct {
	k, m  int
	chunk int
	enc   reedsolomon.Encoder // nil when m == 0
}

func newShardCodec(k, m, chunk int) (*shardCodec, error) {
	c := &shardCodec{k: k, m: m, chunk: chunk}
	if m > 0 {
		enc, err := reedsolomon.New(k, m)
		if err != nil {
			return nil, fmt.Errorf("archive: %d data + %d parity shards: %w", k, m, err)
		}
		c.enc = enc
	}
	return c, nil
}

// encode returns the K+M shard files of block id. The shards are laid
// out in their files' data regions and the parity is computed there, so
// the block is copied once.
func (c *shardCodec) encode(id uint64, body []byte) ([][]byte, error) {
	s := max((len(body)+c.k-1)/c.k, 1)
	n := (s + c.chunk - 1) / c.chunk
	start := (shardHdrLen + 4*n + 7) &^ 7
	files := make([][]byte, c.k+c.m)
	shards := make([][]byte, c.k+c.m)
	for i := range files {
		files[i] = make([]byte, start+s)
		shards[i] = files[i][start : start+s : start+s]
	}
	for i := 0; i < c.k; i++ {
		if lo := i * s; lo < len(body) {
			copy(shards[i], body[lo:min(lo+s, len(body))])
		}
	}
	if c.enc != nil {
		if err := c.enc.Encode(shards); err != nil {
			return nil, fmt.Errorf("archive: encode block %016x: %w", id, err)
		}
	}
	for i, f := range files {
		c.sealShard(f, id, i, uint64(len(body)), s, n)
	}
	return files, nil
}

// sealShard writes the header and checksum table of shard file f, whose
// s data bytes (n chunks) are in place.
func (c *shardCodec) sealShard(f []byte, id uint64, index int, blockLen uint64, s, n int) {
	copy(f, shardMagic)
	binary.LittleEndian.PutUint32(f[8:], shardVersion)
	f[12], f[13] = byte(c.k), byte(c.m)
	binary.LittleEndian.PutUint16(f[14:], uint16(index))
	binary.LittleEndian.PutUint64(f[16:], id)
	binary.LittleEndian.PutUint64(f[24:], blockLen)
	binary.LittleEndian.PutUint64(f[32:], uint64(s))
	binary.LittleEndian.PutUint32(f[40:], uint32(c.chunk))
	binary.LittleEndian.PutUint32(f[44:], uint32(n))
	data := f[len(f)-s:]
	for j := range n {
		lo, hi := j*c.chunk, min((j+1)*c.chunk, s)
		binary.LittleEndian.PutUint32(f[shardHdrLen+4*j:], crc32.Checksum(data[lo:hi], castagnoli))
	}
	binary.LittleEndian.PutUint32(f[48:], shardHeaderCRC(f, n))
}

func shardHeaderCRC(f []byte, n int) uint32 {
	crc := crc32.Update(0, castagnoli, f[:48])
	return crc32.Update(crc, castagnoli, f[shardHdrLen:shardHdrLen+4*n])
}

// parseShard checks a shard file's header and table. It does not check
// the chunks.
func parseShard(f []byte) (shardHeader, error) {
	bad := func(format string, args ...any) (shardHeader, error) {
		return shardHeader{}, fmt.Errorf("%w: shard: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	if len(f) < shardHdrLen || string(f[:8]) != shardMagic {
		return bad("no header")
	}
	if v := binary.LittleEndian.Uint32(f[8:]); v != shardVersion {
		return bad("version %d", v)
	}
	h := shardHeader{
		k: int(f[12]), m: int(f[13]), index: int(binary.LittleEndian.Uint16(f[14:])),
		id:       binary.LittleEndian.Uint64(f[16:]),
		blockLen: binary.LittleEndian.Uint64(f[24:]),
		shardLen: binary.LittleEndian.Uint64(f[32:]),
		chunk:    binary.LittleEndian.Uint32(f[40:]),
		chunks:   binary.LittleEndian.Uint32(f[44:]),
	}
	if h.chunk == 0 || h.k == 0 || h.shardLen > uint64(len(f)) || uint64(h.chunks) != (h.shardLen+uint64(h.chunk)-1)/uint64(h.chunk) {
		return bad("inconsistent sizes")
	}
	n := int(h.chunks)
	h.dataStart = (shardHdrLen + 4*n + 7) &^ 7
	if uint64(len(f)) != uint64(h.dataStart)+h.shardLen {
		return bad("%d bytes, want %d", len(f), uint64(h.dataStart)+h.shardLen)
	}
	if shardHeaderCRC(f, n) != binary.LittleEndian.Uint32(f[48:]) {
		return bad("header checksum")
	}
	return h, nil
}

// chunkOK reports whether chunk j of a parsed shard verifies.
func chunkOK(f []byte, h shardHeader, j int) bool {
	lo := h.dataStart + j*int(h.chunk)
	hi := min(lo+int(h.chunk), len(f))
	return crc32.Checksum(f[lo:hi], castagnoli) == binary.LittleEndian.Uint32(f[shardHdrLen+4*j:])
}

// ShardLoss says which shards of a block were unusable when it was read:
// missing, damaged in the header, or with chunks that failed their
// checksum.
type ShardLoss struct {
	Block   uint64
	Missing []int // shard indexes with no usable file
	Damaged []int // shard indexes with at least one bad chunk
}

// decode rebuilds block id from its shard files (nil for a missing one),
// repairing damaged chunks in the files' bytes. It also returns which
// shards were unusable, and, when the block had to be rebuilt, every
// shard's correct data.
func (c *shardCodec) decode(id uint64, files [][]byte) (body []byte, shards [][]byte, loss ShardLoss, err error) {
	loss.Block = id
	hdrs := make([]*shardHeader, len(files))
	var ref *shardHeader
	for i, f := range files {
		if f == nil {
			loss.Missing = append(loss.Missing, i)
			continue
		}
		h, err := parseShard(f)
		if err != nil || h.id != id || h.index != i || h.k != c.k || h.m != c.m {
			loss.Missing = append(loss.Missing, i)
			continue
		}
		if ref != nil && (h.blockLen != ref.blockLen || h.shardLen != ref.shardLen || h.chunk != ref.chunk) {
			loss.Missing = append(loss.Missing, i)
			continue
		}
		if ref == nil {
			ref = &h
		}
		hdrs[i] = &h
	}
	if ref == nil {
		return nil, nil, loss, fmt.Errorf("%w: block %016x: no shard readable (%d of %d missing or damaged)", ErrLost, id, len(files), len(files))
	}
	if body, ok := c.fastPath(files, hdrs, ref); ok {
		return body, nil, loss, nil
	}
	// Usable shards are worked on in place, in the files' bytes (the
	// caller's copies); only unusable ones get new buffers.
	s := int(ref.shardLen)
	out := make([][]byte, len(files))
	for i, h := range hdrs {
		if h != nil {
			out[i] = files[i][h.dataStart : h.dataStart+s : h.dataStart+s]
		} else {
			out[i] = make([]byte, s)
		}
	}
	damaged := make([]bool, len(files))
	stripe := make([][]byte, len(files))
	for j := 0; j < int(ref.chunks); j++ {
		lo, hi := j*int(ref.chunk), min((j+1)*int(ref.chunk), s)
		have := 0
		for i, h := range hdrs {
			stripe[i] = nil
			if h == nil {
				continue
			}
			if !chunkOK(files[i], *h, j) {
				damaged[i] = true
				continue
			}
			stripe[i] = out[i][lo:hi]
			have++
		}
		if have == len(files) {
			continue
		}
		if have < c.k {
			var bad []int
			for i := range stripe {
				if stripe[i] == nil {
					bad = append(bad, i)
				}
			}
			return nil, nil, loss, fmt.Errorf("%w: block %016x, chunk %d: shards %v unusable, %d of %d needed", ErrLost, id, j, bad, c.k, c.k+c.m)
		}
		for i := range stripe {
			if stripe[i] == nil {
				stripe[i] = out[i][lo:lo:hi] // rebuilt in place
			}
		}
		if err := c.enc.Reconstruct(stripe); err != nil {
			return nil, nil, loss, fmt.Errorf("%w: block %016x, chunk %d: %w", ErrLost, id, j, err)
		}
	}
	for i, d := range damaged {
		if d {
			loss.Damaged = append(loss.Damaged, i)
		}
	}
	body = make([]byte, 0, ref.blockLen)
	for i := 0; i < c.k && uint64(len(body)) < ref.blockLen; i++ {
		body = append(body, out[i][:min(uint64(s), ref.blockLen-uint64(len(body)))]...)
	}
	if uint64(len(body)) != ref.blockLen {
		return nil, nil, loss, fmt.Errorf("%w: block %016x: %d bytes from shards, header says %d", ErrCorrupt, id, len(body), ref.blockLen)
	}
	return body, out, loss, nil
}

// fastPath returns the block when every data shard is present and every
// chunk of it verifies (the common case): the data shards joined, with no
// rebuild, aliasing the file when there is one data shard.
func (c *shardCodec) fastPath(files [][]byte, hdrs []*shardHeader, ref *shardHeader) ([]byte, bool) {
	for i := 0; i < c.k; i++ {
		h := hdrs[i]
		if h == nil {
			return nil, false
		}
		for j := 0; j < int(h.chunks); j++ {
			if !chunkOK(files[i], *h, j) {
				return nil, false
			}
		}
	}
	n := ref.blockLen
	if c.k == 1 {
		f := files[0][hdrs[0].dataStart:]
		return f[:n:n], uint64(len(f)) >= n
	}
	body := make([]byte, 0, n)
	for i := 0; i < c.k && uint64(len(body)) < n; i++ {
		data := files[i][hdrs[i].dataStart:]
		body = append(body, data[:min(uint64(len(data)), n-uint64(len(body)))]...)
	}
	return body, uint64(len(body)) == n
}
