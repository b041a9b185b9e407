"""Common English words that keyterm correction never turns into a keyterm on their own.

A recognizer's near miss of a rare name or brand is rarely one of these, and replacing one of
these is how a corrector ruins ordinary sentences ("the" -> "Theo", "it" -> "IT"). All two- and
three-letter English words of everyday speech are here, plus the most frequent longer ones.
"""

COMMON_WORDS = frozenset(
    """a about above ace act ad add ado after again against age ago ah aid aim air all also always am an
    and another ant any anything ape apt arc are ark arm around art as ash ask at ate away awe ax axe
    back bad bag ban bar bat bay be because bed bee been before beg being below best bet better between
    bid big bin bit boo both bow box boy bring bud bug bum bun bus but buy by bye cab call came can
    cannot cap car care case cat change check close come could cow cry cub cue cup cut dad dam day den
    dew did die different dig dim din dip do doe does dog doing done door dot down dry due dug during
    dye each ear early easy eat egg ego eh either elf elm else end enough era eve even ever every
    everything ex eye face fact fad fan far fat fax fed fee feel few fig fin find fine fir first fit fix
    flu fly foe fog for found fox free friend from fry full fun fur gag gap gas gel gem get gig gin give
    go god going good got great gum gun gut guy gym ha had half ham hand happen happy hard has hat have
    having hay he head hear heard help hen her here hey hi hid high him hip his hit hog hold home hop
    hope hot hour house how hub hue hug huh hum hut i ice icy if ill important in ink inn into ion is it
    its jab jam jar jaw jay jet job jog joy jug just keep key kid kin kind kit know lab lad lag lap
    large last late later law lay leave led left leg less let lid lie life light like line lip lit
    little live log long look lot love low ma mad made make man many map mat may maybe me mean men met
    might mind minute miss mix mob mom money month mop more morning most mother much mud mug must my
    name nap near need net never new next nice night no nod none nor not nothing now number nun nut oak
    oar oat odd of off often oh oil ok okay old on once one only open opt or orb order ore other our out
    over owe owl own pa pad pal pan part pat paw pay pea peg pen people person pet pie pig pin pit place
    plan play please ply pod point pop pot pretty pro problem pub pun pup put question quite rag ram ran
    rap rat rather raw ray read ready real really red rib rid rig right rim rip rob rod room rot row rub
    rug rum run rut sad sag said same sat saw say school sea second see seem seen send set sew she
    should show shy side sin since sip sir sit six ski sky sly small so sob some someone something
    sometimes son soon sorry sow soy spa spy start still stop sub such sum sun sure tab tag take talk
    tan tap tar tax tea tell ten than thank thanks that the their them then there these they thing
    things think this those though thought three through tie time tin tip to today toe together told
    tomorrow ton too took top tow toward toy try trying tub tug turn two uh um under until up upon urn
    us use used van vat very vet via vow wag wait want war was watch water wax way we web wed week well
    went were wet what when where whether which while who whole why wig will win wing wit with without
    woe wok woman won woo word work world would wow write wrong yam yap year yes yesterday yet you young
    your zip zoo""".split()
)
