// Command ansi2svg turns a terminal capture (tmux capture-pane -e -p) into
// an SVG, so the README's screenshot comes from the real binary.
package main

import (
	"bufio"
	"fmt"
	"html"
	"os"
	"strconv"
	"strings"
)

type style struct {
	fg, bg        string
	bold, reverse bool
}

var base16 = []string{"#1d1f21", "#cc6666", "#b5bd68", "#f0c674", "#81a2be", "#b294bb", "#8abeb7", "#c5c8c6",
	"#666666", "#d54e53", "#b9ca4a", "#e7c547", "#7aa6da", "#c397d8", "#70c0b1", "#eaeaea"}

func color256(n int) string {
	if n < 16 {
		return base16[n]
	}
	if n < 232 {
		n -= 16
		lv := []int{0, 95, 135, 175, 215, 255}
		return fmt.Sprintf("#%02x%02x%02x", lv[n/36], lv[(n/6)%6], lv[n%6])
	}
	g := 8 + (n-232)*10
	return fmt.Sprintf("#%02x%02x%02x", g, g, g)
}

func (s *style) apply(params []int) {
	if len(params) == 0 {
		params = []int{0}
	}
	for i := 0; i < len(params); i++ {
		p := params[i]
		switch {
		case p == 0:
			*s = style{}
		case p == 1:
			s.bold = true
		case p == 22:
			s.bold = false
		case p == 7:
			s.reverse = true
		case p == 27:
			s.reverse = false
		case p >= 30 && p <= 37:
			s.fg = base16[p-30]
		case p >= 90 && p <= 97:
			s.fg = base16[p-90+8]
		case p == 39:
			s.fg = ""
		case p >= 40 && p <= 47:
			s.bg = base16[p-40]
		case p >= 100 && p <= 107:
			s.bg = base16[p-100+8]
		case p == 49:
			s.bg = ""
		case (p == 38 || p == 48) && i+2 < len(params) && params[i+1] == 5:
			c := color256(params[i+2])
			if p == 38 {
				s.fg = c
			} else {
				s.bg = c
			}
			i += 2
		case (p == 38 || p == 48) && i+4 < len(params) && params[i+1] == 2:
			c := fmt.Sprintf("#%02x%02x%02x", params[i+2], params[i+3], params[i+4])
			if p == 38 {
				s.fg = c
			} else {
				s.bg = c
			}
			i += 4
		}
	}
}

type cell struct {
	r rune
	s style
}

func main() {
	const cw, ch = 8.4, 17.0
	var lines [][]cell
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(nil, 1<<20)
	var st style
	for sc.Scan() {
		var row []cell
		rs := []rune(sc.Text())
		for i := 0; i < len(rs); i++ {
			if rs[i] == 0x1b && i+1 < len(rs) && rs[i+1] == '[' {
				j := i + 2
				for j < len(rs) && (rs[j] < 0x40 || rs[j] > 0x7e) {
					j++
				}
				if j < len(rs) && rs[j] == 'm' {
					var ps []int
					for _, f := range strings.Split(string(rs[i+2:j]), ";") {
						n, _ := strconv.Atoi(f)
						ps = append(ps, n)
					}
					st.apply(ps)
				}
				i = j
				continue
			}
			row = append(row, cell{rs[i], st})
		}
		lines = append(lines, row)
	}
	width := 0
	for _, l := range lines {
		width = max(width, len(l))
	}
	w, h := float64(width)*cw+20, float64(len(lines))*ch+20
	fmt.Printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f">`+"\n", w, h, w, h)
	fmt.Printf(`<rect width="100%%" height="100%%" rx="6" fill="%s"/>`+"\n", base16[0])
	fmt.Println(`<g font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="14" xml:space="preserve">`)
	for y, l := range lines {
		for x, c := range l {
			fg, bg := c.s.fg, c.s.bg
			if fg == "" {
				fg = base16[7]
			}
			if c.s.reverse {
				if bg == "" {
					bg = base16[0]
				}
				fg, bg = bg, fg
			}
			if bg != "" {
				fmt.Printf(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", 10+float64(x)*cw, 10+float64(y)*ch, cw+0.5, ch, bg)
			}
			if c.r == ' ' {
				continue
			}
			weight := ""
			if c.s.bold {
				weight = ` font-weight="bold"`
			}
			fmt.Printf(`<text x="%.1f" y="%.1f" fill="%s"%s>%s</text>`+"\n", 10+float64(x)*cw, 10+float64(y)*ch+13, fg, weight, html.EscapeString(string(c.r)))
		}
	}
	fmt.Println("</g></svg>")
}
