package clip_test

import (
	"fmt"

	"github.com/outbound-webhooks/outbound/internal/clip"
)

func ExampleString() {
	fmt.Println(clip.String("short", 10))
	fmt.Println(clip.String("eleven byte", 10)) // the mark is 3 bytes of the 10
	fmt.Println(clip.String("ééééé", 8))        // 10 bytes; a cut at 5 would split an é
	// Output:
	// short
	// eleven …
	// éé…
}
